// The CUDA backend against the CPU backend on real models: the logits of a prompt, greedy
// decoding token by token, and batch invariance on the GPU.
//
// References and tolerances: the CPU backend (model::CpuBackend, itself checked against Hugging
// Face transformers in tests/unit/model/reference_test.cc) on the same batches. Logits agree to
// ||gpu - cpu|| / ||cpu|| < 2e-2 (f16 matmul operands, 2^-11 each, over every layer); greedy
// tokens agree for the first 16 steps at least (a near-tie may flip a later one; the test prints
// how many of 64 agree). Both only where the CPU computes in f32 (not its 8-bit-activation
// path for Q8_0/Q4_0): every format is also held to transformers' logits. On the GPU, a sequence's
// logits are bit-identical alone and batched.
//
// Models: stories260K (../shared) and the tiny llama fixture in F32, F16, Q8_0, Q4_0 and Q4_1;
// more GGUF files may be named in
// KINFER_CUDA_TEST_MODELS (comma-separated: the default model, the benchmark shapes), for which
// greedy agreement is only printed (random weights make near-ties common).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <sstream>

#include <fmt/format.h>

#include "core/json.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/cpu_backend.h"
#include "model/model.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace kinfer::model {
namespace {

using kinfer::testing::RelError;

std::vector<std::string> ExtraModels() {
  std::vector<std::string> m;
  if (const char* extra = std::getenv("KINFER_CUDA_TEST_MODELS")) {
    std::stringstream ss(extra);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) m.push_back(item);
    }
  }
  return m;
}

std::vector<std::string> Models() {
  std::vector<std::string> m = {KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf"};
  for (const char* t : {"f32", "f16", "q8_0", "q4_0", "q4_1"}) {
    m.push_back(fmt::format("{}/models/llama/llama.{}.gguf", KINFER_FIXTURES_DIR, t));
  }
  for (const std::string& e : ExtraModels()) m.push_back(e);
  return m;
}

// Whether the CPU backend's MatMul rounds activations to 8 bits for any of the model's matrices.
bool CpuRoundsActivations(const Model& m) {
  bool q8 = false;
  for (const LayerWeights& l : m.weights().layers) {
    for (const TensorView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      q8 = q8 || kernels::MatMulUsesQ8Activations(w->dtype, w->cols());
    }
  }
  return q8 ||
         kernels::MatMulUsesQ8Activations(m.weights().lm_head.dtype, m.weights().lm_head.cols());
}

// Both backends over one model, each with its own KV cache of identical block layout.
struct Pair {
  std::unique_ptr<Model> model;
  ThreadPool pool{2};
  std::unique_ptr<Backend> cpu, gpu;
  int64_t blocks = 0;
  bool ok = false;  // both backends are up

  explicit Pair(const std::string& path, int64_t positions) {
    LoadOptions lo;
    lo.pack_weights = false;
    auto m = LoadModel(path, lo);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    model = std::move(*m);
    cpu = std::make_unique<CpuBackend>(*model, pool);
    auto g = cuda::CreateCudaBackend(*model, {});
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    if (g.ok()) gpu = std::move(*g);
    const ModelConfig& c = model->config();
    blocks = 4 * ((positions + 15) / 16);
    KvStoreConfig kc{c.num_layers, c.num_kv_heads, c.head_dim, 16, blocks, DType::kF16};
    if (!g.ok()) return;
    EXPECT_TRUE(cpu->AllocateKvCache(kc, positions).ok());
    EXPECT_TRUE(gpu->Reserve(256).ok());
    Status st = gpu->AllocateKvCache(kc, positions);
    EXPECT_TRUE(st.ok()) << st.ToString();
    ok = st.ok();
  }
};

std::vector<float> Forward(Backend& b, const std::vector<int32_t>& tokens,
                           const std::vector<SequenceInput>& seqs, int64_t vocab) {
  ForwardBatch batch{tokens, seqs};
  std::vector<float> logits(static_cast<size_t>(Decoder::NumLogitRows(batch) * vocab));
  Status st = b.Forward(batch, logits);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return logits;
}

TEST(CudaBackend, PromptLogitsAndGreedyTokensMatchTheCpuBackend) {
  KINFER_REQUIRE_GPU();
  const std::vector<std::string> extra = ExtraModels();
  for (const std::string& path : Models()) {
    SCOPED_TRACE(path);
    const int64_t kPrompt = 40, kSteps = 64;
    Pair p(path, kPrompt + kSteps + 1);
    if (!p.ok) continue;
    const int64_t V = p.model->config().vocab_size;
    std::vector<int32_t> table(static_cast<size_t>(p.blocks / 4));
    std::iota(table.begin(), table.end(), 0);
    std::mt19937 rng(1);
    std::vector<int32_t> prompt(kPrompt);
    for (auto& t : prompt) t = static_cast<int32_t>(1 + rng() % static_cast<uint32_t>(V - 1));

    // The prompt in one chunk, every row of logits.
    std::vector<SequenceInput> seq = {{static_cast<int32_t>(kPrompt), 0, table, LogitsMode::kAll}};
    const std::vector<float> lc = Forward(*p.cpu, prompt, seq, V);
    const std::vector<float> lg = Forward(*p.gpu, prompt, seq, V);
    const double err = RelError(lg, lc);
    int argmax_same = 0;
    for (int64_t r = 0; r < kPrompt; ++r) {
      argmax_same += kernels::ArgMax(lc.data() + r * V, V) == kernels::ArgMax(lg.data() + r * V, V);
    }
    std::printf("[cuda] %s: prompt logits rel. error %.2e, argmax equal in %d of %lld rows\n",
                path.c_str(), err, argmax_same, static_cast<long long>(kPrompt));
    // Where the CPU rounds the activations of Q8_0 and Q4_0 matmuls to 8 bits (AVX-512 VNNI;
    // reference_test.cc allows that 3e-2 off transformers on the fixtures, and it grows on
    // random weights), the CPU is not the reference: GpuLogitsMatchTransformers holds those
    // formats to transformers instead, and this only prints.
    const bool cpu_f32 = !CpuRoundsActivations(*p.model);
    if (cpu_f32) {
      EXPECT_LT(err, 2e-2);
    }

    // Greedy decoding, each backend feeding itself.
    int32_t next_c = kernels::ArgMax(lc.data() + (kPrompt - 1) * V, V);
    int32_t next_g = kernels::ArgMax(lg.data() + (kPrompt - 1) * V, V);
    int agree = 0;
    bool diverged = next_c != next_g;
    for (int64_t i = 0; i < kSteps && !diverged; ++i) {
      ++agree;
      std::vector<SequenceInput> one = {
          {1, static_cast<int32_t>(kPrompt + i), table, LogitsMode::kLast}};
      const std::vector<float> c = Forward(*p.cpu, {next_c}, one, V);
      const std::vector<float> g = Forward(*p.gpu, {next_g}, one, V);
      next_c = kernels::ArgMax(c.data(), V);
      next_g = kernels::ArgMax(g.data(), V);
      diverged = next_c != next_g;
    }
    std::printf("[cuda] %s: greedy tokens equal for %d of %lld steps\n", path.c_str(), agree,
                static_cast<long long>(kSteps));
    // Random-weight models (KINFER_CUDA_TEST_MODELS) are all near-ties: printed only.
    if (cpu_f32 && std::find(extra.begin(), extra.end(), path) == extra.end()) {
      EXPECT_GE(agree, 16);
    }
  }
}

TEST(CudaBackend, LogitsAreBitIdenticalAloneAndBatched) {
  KINFER_REQUIRE_GPU();
  const std::string path = KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf";
  Pair p(path, 128);
  if (!p.ok) return;
  const int64_t V = p.model->config().vocab_size;
  const int64_t per_seq = p.blocks / 4;  // 4 disjoint tables
  std::vector<std::vector<int32_t>> tables(4, std::vector<int32_t>(static_cast<size_t>(per_seq)));
  for (int s = 0; s < 4; ++s) std::iota(tables[s].begin(), tables[s].end(), s * per_seq);
  std::mt19937 rng(2);
  auto prompt = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
    return v;
  };
  const std::vector<int32_t> a = prompt(37), b = prompt(5), c = prompt(70);
  // Alone: a's prompt, then one decode token.
  const std::vector<float> alone = Forward(*p.gpu, a, {{37, 0, tables[0], LogitsMode::kAll}}, V);
  const std::vector<float> alone_next =
      Forward(*p.gpu, {a[0]}, {{1, 37, tables[0], LogitsMode::kLast}}, V);
  // Batched: b and c's prompts around a's (a in table 1 now), then a's decode beside b's.
  std::vector<int32_t> tokens = b;
  tokens.insert(tokens.end(), a.begin(), a.end());
  tokens.insert(tokens.end(), c.begin(), c.end());
  const std::vector<float> batched = Forward(*p.gpu, tokens,
                                             {{5, 0, tables[2], LogitsMode::kLast},
                                              {37, 0, tables[1], LogitsMode::kAll},
                                              {70, 0, tables[3], LogitsMode::kLast}},
                                             V);
  const std::vector<float> batched_next =
      Forward(*p.gpu, {b[0], a[0]},
              {{1, 5, tables[2], LogitsMode::kLast}, {1, 37, tables[1], LogitsMode::kLast}}, V);
  for (int64_t i = 0; i < 37 * V; ++i) {
    ASSERT_EQ(batched[static_cast<size_t>(V + i)], alone[static_cast<size_t>(i)]) << i;
  }
  for (int64_t i = 0; i < V; ++i) {
    ASSERT_EQ(batched_next[static_cast<size_t>(V + i)], alone_next[static_cast<size_t>(i)]) << i;
  }
}

// max |a - b| / max |b|, as reference_test.cc measures.
double ScaledError(const std::vector<float>& a, const std::vector<float>& b) {
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    max_err = std::max(max_err, std::fabs(static_cast<double>(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  return max_err / max_ref;
}

// Against Hugging Face transformers (the fixtures' reference logits, computed on the values each
// GGUF file stores): every position of every reference sequence, for every format of every
// family fixture (Llama, Llama 3 rope scaling, Mistral, Qwen2 QKV bias, Qwen3 QK-norm, K-quants).
// Bound 1e-2 of the largest logit, the CPU's bound with an f16 KV cache: the GPU's f16 matmul
// operands add 2^-11 relative per product on top of the f16 cache.
TEST(CudaBackend, GpuLogitsMatchTransformers) {
  KINFER_REQUIRE_GPU();
  for (const char* family : {"llama", "llama3", "mistral", "qwen2", "qwen3", "kquant"}) {
    const std::string dir = fmt::format("{}/models/{}", KINFER_FIXTURES_DIR, family);
    auto text = ReadFileToString(dir + "/reference.json");
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    auto ref = ParseJson(*text, "reference.json");
    ASSERT_TRUE(ref.ok());
    for (const auto& [format, file] : (*ref)["gguf_files"].items()) {
      SCOPED_TRACE(fmt::format("{} {}", family, format));
      const std::string path = dir + "/" + file.get<std::string>();
      auto want_all = ReadFileToString(dir + "/" + (*ref)["logits"][format].get<std::string>());
      ASSERT_TRUE(want_all.ok());
      Pair p(path, 64);
      if (!p.ok) continue;
      const int64_t V = p.model->config().vocab_size;
      std::vector<int32_t> table(static_cast<size_t>(p.blocks));
      std::iota(table.rbegin(), table.rend(), 0);  // physical order must not matter
      size_t offset = 0;
      double worst = 0;
      for (const auto& seq_json : (*ref)["sequences"]) {
        const std::vector<int32_t> seq = seq_json.get<std::vector<int32_t>>();
        std::vector<float> want(seq.size() * static_cast<size_t>(V));
        ASSERT_LE((offset + want.size()) * 4, want_all->size());
        std::memcpy(want.data(), want_all->data() + offset * 4, want.size() * 4);
        offset += want.size();
        const std::vector<float> got = Forward(
            *p.gpu, seq, {{static_cast<int32_t>(seq.size()), 0, table, LogitsMode::kAll}}, V);
        worst = std::max(worst, ScaledError(got, want));
      }
      std::printf("[cuda] transformers reference, %s %s: scaled error %.2e\n", family,
                  format.c_str(), worst);
      EXPECT_LE(worst, 1e-2);
    }
  }
}

// Decode steps replayed from CUDA graphs give what launching each kernel gives, bit for bit.
TEST(CudaBackend, DecodeGraphsMatchDirectLaunches) {
  KINFER_REQUIRE_GPU();
  const std::string path = KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf";
  setenv("KINFER_CUDA_GRAPHS", "0", 1);
  Pair direct(path, 96);
  unsetenv("KINFER_CUDA_GRAPHS");
  Pair graphs(path, 96);
  if (!direct.ok || !graphs.ok) return;
  const int64_t V = direct.model->config().vocab_size;
  std::vector<int32_t> ta(6), tb(6);
  std::iota(ta.begin(), ta.end(), 0);
  std::iota(tb.begin(), tb.end(), 6);
  std::vector<int32_t> prompt(20);
  std::iota(prompt.begin(), prompt.end(), 3);
  for (Pair* p : {&direct, &graphs}) {
    Forward(*p->gpu, prompt, {{20, 0, ta, LogitsMode::kLast}}, V);
    Forward(*p->gpu, prompt, {{20, 0, tb, LogitsMode::kLast}}, V);
  }
  for (int32_t step = 0; step < 30; ++step) {
    const std::vector<int32_t> tokens = {step + 1, 2 * step + 1};
    const std::vector<SequenceInput> two = {{1, 20 + step, ta, LogitsMode::kLast},
                                            {1, 20 + step, tb, LogitsMode::kLast}};
    const std::vector<float> a = Forward(*direct.gpu, tokens, two, V);
    const std::vector<float> b = Forward(*graphs.gpu, tokens, two, V);
    ASSERT_EQ(a, b) << "step " << step;
  }
}

TEST(CudaBackend, RejectsMalformedBatchesLikeTheCpuBackend) {
  KINFER_REQUIRE_GPU();
  Pair p(KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf", 64);
  if (!p.ok) return;
  const int64_t V = p.model->config().vocab_size;
  std::vector<int32_t> table = {0};
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<int32_t> bad_token = {static_cast<int32_t>(V)};
  std::vector<SequenceInput> seq = {{1, 0, table, LogitsMode::kLast}};
  EXPECT_FALSE(p.gpu->Forward({bad_token, seq}, logits).ok());
  std::vector<int32_t> ok_token = {1};
  std::vector<SequenceInput> long_seq = {{1, 16, table, LogitsMode::kLast}};  // needs 2 blocks
  EXPECT_FALSE(p.gpu->Forward({ok_token, long_seq}, logits).ok());
  EXPECT_TRUE(p.gpu->Forward({ok_token, seq}, logits).ok());
}

}  // namespace
}  // namespace kinfer::model
