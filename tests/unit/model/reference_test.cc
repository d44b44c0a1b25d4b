// Logits of every family and format against Hugging Face transformers (tests/fixtures/models,
// made by tests/reference/make_model_fixtures.py), and greedy decoding of the real stories260K
// model in its three formats against llama2.c's run.c (../shared/models/stories260K).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "core/json.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "kernels/pack.h"
#include "model/decoder.h"
#include "model/model.h"

namespace kinfer::model {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = KINFER_FIXTURES_DIR "/models";
const std::string kShared = KINFER_SHARED_DIR;

// Runs `tokens` from position 0 as one sequence and returns logits for every position.
// `context_length` is the Decoder's (LongRoPE picks its factors by it); 0: as transformers
// picks them for this one sequence (long factors when it is longer than the original context).
std::vector<float> RunAll(const Model& model, const std::vector<int32_t>& tokens, DType kv_dtype,
                          ThreadPool& pool, int64_t chunk = 0, int64_t context_length = 0) {
  const ModelConfig& c = model.config();
  KvStoreConfig kc{
      c.num_layers, c.num_kv_heads, c.head_dim, 16, static_cast<int64_t>(tokens.size()) / 16 + 1,
      kv_dtype};
  auto kv = KvStore::Create(kc);
  EXPECT_TRUE(kv.ok()) << kv.status().ToString();
  std::vector<int32_t> table(static_cast<size_t>(kc.num_blocks));
  std::iota(table.begin(), table.end(), 0);
  std::reverse(table.begin(), table.end());  // physical order must not matter
  if (context_length == 0) context_length = static_cast<int64_t>(tokens.size());
  Decoder dec(model, pool, context_length);
  std::vector<float> out(tokens.size() * static_cast<size_t>(c.vocab_size));
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (chunk <= 0) chunk = n;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    int64_t len = std::min(chunk, n - begin);
    SequenceInput s{static_cast<int32_t>(len), static_cast<int32_t>(begin), table,
                    LogitsMode::kAll};
    ForwardBatch b{std::span<const int32_t>(tokens).subspan(static_cast<size_t>(begin),
                                                            static_cast<size_t>(len)),
                   std::span<const SequenceInput>(&s, 1)};
    Status st = dec.Forward(
        b, **kv, std::span<float>(out).subspan(static_cast<size_t>(begin * c.vocab_size)));
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return out;
}

std::vector<float> ReadF32(const std::string& path) {
  auto f = MappedFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  std::vector<float> v((*f)->size() / 4);
  std::memcpy(v.data(), (*f)->data(), v.size() * 4);
  return v;
}

// max |a - b| / max |b|: the error scaled by the logits' magnitude.
double ScaledError(const std::vector<float>& a, const std::vector<float>& b) {
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    max_err = std::max(max_err, std::fabs(static_cast<double>(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  return max_err / max_ref;
}

struct Case {
  std::string name;    // fixture model
  std::string format;  // "hf" or "<type>.gguf"
};

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const auto& dir : fs::directory_iterator(kFixtures)) {
    auto text = ReadFileToString((dir.path() / "reference.json").string());
    if (!text.ok()) continue;
    auto j = ParseJson(*text, "reference.json");
    for (auto it = (*j)["logits"].begin(); it != (*j)["logits"].end(); ++it) {
      cases.push_back({dir.path().filename().string(), it.key()});
    }
  }
  std::sort(cases.begin(), cases.end(),
            [](const Case& a, const Case& b) { return a.name + a.format < b.name + b.format; });
  return cases;
}

class ReferenceLogits : public ::testing::TestWithParam<Case> {};

std::string ModelPath(const Case& c) {
  fs::path dir = fs::path(kFixtures) / c.name;
  if (c.format == "hf") return (dir / "hf").string();
  return (dir / (c.name + "." + c.format)).string();
}

// Every position of every reference sequence, f32 KV cache. The GGUF references were computed
// by transformers on the values each file stores (dequantized), and the HF ones on the stored
// f16/bf16/f32 weights upcast to f32, so the exact path (f32 activations) is held to the f32
// tolerance of 1e-4 in every format.
//
// The fast path rounds activations where that buys speed: to 8 bits for Q8_0/Q4_0/Q5_x and the
// K-quants on CPUs with AVX-512 VNNI, to bf16 for BF16/F16 weights on AMX tiles. Issue 17's rule
// for it: its error may not exceed what transformers' own BF16 run deviates from its F32 run on
// the same fixture. tests/reference/make_bf16_runs.py measured that deviation for every fixture
// and format (reference.json "bf16_run_error": 0.003 to 0.024, max over positions, scaled by
// max |logit|; for the mixture-of-experts fixtures over the positions compared below, before the
// first router near-tie); it is the bound here. Gemma's post-norms (each attention and FFN output
// normalized again before the residual add) scale rounding up, in transformers' bf16 run too
// (0.024 on gemma3, against 0.01-0.017 elsewhere).
TEST_P(ReferenceLogits, MatchTransformersWithinF32Tolerance) {
  const Case& c = GetParam();
  auto text = ReadFileToString(kFixtures + "/" + c.name + "/reference.json");
  ASSERT_TRUE(text.ok());
  auto ref = ParseJson(*text, "reference.json");
  ASSERT_TRUE(ref.ok());
  std::vector<float> expected =
      ReadF32(kFixtures + "/" + c.name + "/" + (*ref)["logits"][c.format].get<std::string>());
  ASSERT_TRUE((*ref)["bf16_run_error"].contains(c.format)) << "run make_bf16_runs.py";
  const double bf16_run_error = (*ref)["bf16_run_error"][c.format].get<double>();
  ThreadPool pool(2);
  // Mixture of experts on the rounding path: where the reference router ranks the k-th and
  // (k+1)-th experts within 1% of each other (reference.json router_near_ties, e.g. 0.1318 vs
  // 0.1307), the activation rounding may pick the other expert, as it may in llama.cpp, and that
  // token's logits (0.14 measured) and those after it (through attention) are another model's.
  // Those positions are not compared on that path; everything before them is, at its bound.
  std::vector<size_t> near_tie;  // per sequence: first position the rounding path skips
  for (size_t i = 0; i < (*ref)["sequences"].size(); ++i) {
    near_tie.push_back((*ref)["sequences"][i].size());
  }
  if (ref->contains("router_near_ties") && (*ref)["router_near_ties"].contains(c.format)) {
    for (const auto& tie : (*ref)["router_near_ties"][c.format]) {
      size_t si = tie[0].get<size_t>(), pos = tie[1].get<size_t>();
      near_tie[si] = std::min(near_tie[si], pos);
    }
  }
  for (auto precision : {kernels::MatMulPrecision::kFast, kernels::MatMulPrecision::kExact}) {
    kernels::SetMatMulPrecision(precision);  // before loading: packing follows the paths
    auto model = LoadModel(ModelPath(c));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const bool exact = precision == kernels::MatMulPrecision::kExact;
    const DType wtype = (*model)->weights().layers[0].wq.dtype;
    const bool rounds = kernels::MatMulActivationsFor(wtype, (*model)->config().hidden_size) !=
                        kernels::MatMulActivations::kF32;
    EXPECT_TRUE(!exact || !rounds);
    const double tol = rounds ? bf16_run_error : 1e-4;
    const std::string what = c.name + " " + c.format + (exact ? " exact" : " fast");
    size_t offset = 0, seq_index = 0;
    double worst = 0;
    const size_t vocab = static_cast<size_t>((*model)->config().vocab_size);
    for (const auto& seq_json : (*ref)["sequences"]) {
      std::vector<int32_t> seq = seq_json.get<std::vector<int32_t>>();
      std::vector<float> want(expected.begin() + static_cast<long>(offset),
                              expected.begin() + static_cast<long>(offset + seq.size() * vocab));
      offset += seq.size() * vocab;
      std::vector<float> got = RunAll(**model, seq, DType::kF32, pool);
      // Prefill in chunks of 3 must give bit-identical logits to one pass (compared whole; only
      // the tolerance checks stop at a router near-tie).
      std::vector<float> chunked = RunAll(**model, seq, DType::kF32, pool, 3);
      EXPECT_EQ(chunked, got) << what << " chunked prefill";
      const size_t compared = (rounds ? near_tie[seq_index] : seq.size()) * vocab;
      ++seq_index;
      got.resize(compared);
      want.resize(compared);
      if (compared == 0) continue;
      worst = std::max(worst, ScaledError(got, want));
      EXPECT_LE(ScaledError(got, want), tol) << what << " len " << seq.size();
      // Greedy decoding picks the reference's token at every position (f32 activations).
      for (size_t p = 0; !rounds && p < seq.size(); ++p) {
        auto at = [&](const std::vector<float>& v) {
          return std::max_element(v.begin() + p * vocab, v.begin() + (p + 1) * vocab) -
                 (v.begin() + p * vocab);
        };
        EXPECT_EQ(at(got), at(want)) << what << " greedy token at " << p;
      }
      // The f16 KV cache rounds keys and values to 11 significant bits (relative 2^-11); through
      // softmax and a few layers that stays well under 1% of the logits' range.
      std::vector<float> got16 = RunAll(**model, seq, DType::kF16, pool);
      got16.resize(compared);
      EXPECT_LE(ScaledError(got16, want), std::max(1e-2, tol)) << what << " f16 KV";
    }
    EXPECT_EQ(offset, expected.size());
    if (rounds) {
      std::printf("[ precision] %-22s fast path %.4g, transformers bf16 run %.4g\n",
                  (c.name + " " + c.format).c_str(), worst, bf16_run_error);
    }
  }
  kernels::SetMatMulPrecision(kernels::MatMulPrecision::kFast);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceLogits, ::testing::ValuesIn(AllCases()),
                         [](const auto& info) {
                           std::string s = info.param.name + "_" + info.param.format;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

TEST(ReferenceLogits, CoversEveryFamilyAndFormat) {
  std::set<std::string> names, formats;
  for (const Case& c : AllCases()) {
    names.insert(c.name);
    formats.insert(c.format);
  }
  for (const char* n : {"llama", "llama3", "mistral", "qwen2", "qwen3", "kquant", "gemma2",
                        "gemma3", "phi3", "qwen3moe", "mixtral"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  for (const char* f : {"hf", "f32.gguf", "f16.gguf", "q8_0.gguf", "q4_0.gguf", "q4_1.gguf",
                        "q4_k.gguf", "q6_k.gguf"}) {
    EXPECT_TRUE(formats.count(f)) << f;
  }
}

// Q8_0, Q4_0, K-quant, F16 and BF16 matrices repacked at load (kernels/pack.h, where this CPU's
// MatMul reads them faster), from GGUF files and HF checkpoints alike, give the logits of the
// stored layout bit for bit, prefill and chunked, tied embeddings included (qwen2's embedding is
// its LM head, looked up from the packed matrix), and so do the new families' (Phi-3's fused row
// slices, Gemma, every expert of the MoE ones).
TEST(ReferenceLogits, PackedWeightsGiveStoredLayoutLogits) {
  int tested = 0;
  for (const char* name : {"qwen2", "llama", "llama3", "mistral", "qwen3", "kquant", "gemma2",
                           "gemma3", "phi3", "qwen3moe", "mixtral"}) {
    for (const char* type : {"q8_0", "q4_0", "q4_k", "q6_k", "f16", "hf"}) {
      const std::string t = type, dir = kFixtures + "/" + name + "/";
      const std::string path = t == "hf" ? dir + "hf" : dir + name + "." + t + ".gguf";
      if (!fs::exists(path)) continue;
      ++tested;
      LoadOptions stored_opts;
      stored_opts.pack_weights = false;
      auto stored = LoadModel(path, stored_opts);
      auto packed = LoadModel(path);
      ASSERT_TRUE(stored.ok() && packed.ok()) << path;
      const TensorView& wq = (*packed)->weights().layers[0].wq;
      EXPECT_EQ(kernels::IsPacked(wq.dtype), kernels::ShouldPack((*stored)->weights().layers[0].wq))
          << path;
      ThreadPool pool(2);
      std::vector<int32_t> seq(37);
      for (size_t i = 0; i < seq.size(); ++i) {
        seq[i] =
            static_cast<int32_t>((i * 7 + 3) % static_cast<size_t>((*packed)->config().vocab_size));
      }
      const auto want = RunAll(**stored, seq, DType::kF32, pool);
      EXPECT_EQ(RunAll(**packed, seq, DType::kF32, pool), want) << path;
      EXPECT_EQ(RunAll(**packed, seq, DType::kF32, pool, 1),
                RunAll(**stored, seq, DType::kF32, pool, 1))
          << path << " one token at a time";
    }
  }
  EXPECT_EQ(tested, 33);
}

// transformers 4's `rope_theta` + `rope_scaling` keys describe the same llama3 model as
// transformers 5's `rope_parameters`: same logits.
TEST(ReferenceLogits, LegacyRopeScalingConfigMatches) {
  fs::path tmp = fs::temp_directory_path() / ("kinfer_legacy_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  fs::copy_file(fs::path(kFixtures) / "llama3/hf-legacy-config/config.json", tmp / "config.json",
                fs::copy_options::overwrite_existing);
  fs::create_symlink(fs::absolute(fs::path(kFixtures) / "llama3/hf/model.safetensors"),
                     tmp / "model.safetensors");
  auto legacy = LoadModel(tmp.string());
  auto modern = LoadModel(kFixtures + "/llama3/hf");
  ASSERT_TRUE(legacy.ok()) << legacy.status().ToString();
  ASSERT_TRUE(modern.ok());
  EXPECT_EQ((*legacy)->config().rope_scaling.type, RopeScalingType::kLlama3);
  ThreadPool pool(1);
  std::vector<int32_t> seq(40);
  std::iota(seq.begin(), seq.end(), 3);
  EXPECT_EQ(RunAll(**legacy, seq, DType::kF32, pool), RunAll(**modern, seq, DType::kF32, pool));
  fs::remove_all(tmp);
}

// Greedy decoding as llama2.c run.c does it: prompt ids one per position, argmax after the last.
class Stories260K : public ::testing::TestWithParam<std::string> {};

TEST_P(Stories260K, GreedyDecodeMatchesRunC) {
  auto text = ReadFileToString(kShared + "/models/stories260K/expected.json");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto expected = ParseJson(*text, "expected.json");
  ASSERT_TRUE(expected.ok());
  auto model = LoadModel(kShared + "/models/stories260K/" + GetParam());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ModelConfig& c = (*model)->config();
  ThreadPool pool(2);
  Decoder dec(**model, pool);
  for (const auto& cs : (*expected)["cases"]) {
    std::vector<int32_t> prompt = cs["prompt_ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> want = cs["generated_ids"].get<std::vector<int32_t>>();
    std::vector<float> want_logits = cs["last_prompt_position_logits"].get<std::vector<float>>();
    const int steps = cs["steps"].get<int>();
    KvStoreConfig kc{c.num_layers, c.num_kv_heads, c.head_dim, 16, steps / 16 + 2, DType::kF32};
    auto kv = KvStore::Create(kc);
    ASSERT_TRUE(kv.ok());
    std::vector<int32_t> table(static_cast<size_t>(kc.num_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    // Prompt in one pass, then one token per step.
    SequenceInput s{static_cast<int32_t>(prompt.size()), 0, table, LogitsMode::kLast};
    ASSERT_TRUE(dec.Forward({prompt, {&s, 1}}, **kv, logits).ok());
    for (size_t i = 0; i < want_logits.size(); ++i) {
      ASSERT_NEAR(logits[i], want_logits[i], 1e-3) << "logit " << i;
    }
    std::vector<int32_t> got;
    int32_t pos = static_cast<int32_t>(prompt.size());
    while (pos <= steps) {
      int32_t next =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (next == 1) break;  // run.c stops on BOS
      got.push_back(next);
      if (pos == steps) break;
      SequenceInput d{1, pos, table, LogitsMode::kLast};
      ASSERT_TRUE(
          dec.Forward({std::span<const int32_t>(&got.back(), 1), {&d, 1}}, **kv, logits).ok());
      ++pos;
    }
    EXPECT_EQ(got, want) << "prompt '" << cs["prompt"].get<std::string>() << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, Stories260K,
                         ::testing::Values("stories260K.bin", "stories260K.gguf", "hf"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace kinfer::model
