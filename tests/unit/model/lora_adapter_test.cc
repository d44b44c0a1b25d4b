// LoRA adapters against PEFT (tests/fixtures/lora, made by tests/reference/make_lora_fixtures.py
// from the tiny `llama` fixture): logits equal PEFT's unmerged model and its merge_and_unload()
// within the F32 tolerance, for PEFT and GGUF adapters (the GGUF written by llama.cpp's own
// converter) on HF and GGUF bases; greedy tokens identical; a batch mixing the base and two
// adapters equals each sequence alone, bit for bit; and what cannot be served is refused with an
// error naming the file and field.
#include "model/lora_adapter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <gmock/gmock.h>
#include <unistd.h>

#include "core/json.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/decoder.h"
#include "model/model.h"

namespace kinfer::model {
namespace {

namespace fs = std::filesystem;
const std::string kLora = KINFER_FIXTURES_DIR "/lora";
const std::string kLlama = KINFER_FIXTURES_DIR "/models/llama";

Json Reference() {
  auto text = ReadFileToString(kLora + "/reference.json");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  auto j = ParseJson(*text, "reference.json");
  EXPECT_TRUE(j.ok());
  return *j;
}

std::vector<float> ReadF32(const std::string& path) {
  auto f = MappedFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  std::vector<float> v((*f)->size() / 4);
  std::memcpy(v.data(), (*f)->data(), v.size() * 4);
  return v;
}

double ScaledError(const std::vector<float>& a, const std::vector<float>& b) {
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    max_err = std::max(max_err, std::fabs(static_cast<double>(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  return max_err / max_ref;
}

std::unique_ptr<Model> Load(const std::string& path) {
  auto m = LoadModel(path);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(*m) : nullptr;
}

std::shared_ptr<const LoraAdapter> Adapter(const std::string& path, const Model& base) {
  auto a = LoadLoraAdapter(path, base, {});
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? *a : nullptr;
}

// One sequence through the decoder, `chunk` tokens per step, with its own KV store; returns the
// logits of every position.
class Runner {
 public:
  Runner(const Model& m, ThreadPool& pool) : m_(m), dec_(m, pool) {
    const ModelConfig& c = m.config();
    kv_ =
        std::move(*KvStore::Create({c.num_layers, c.num_kv_heads, c.head_dim, 16, 8, DType::kF32}));
  }
  std::vector<float> All(const std::vector<int32_t>& tokens, const LoraAdapter* lora) {
    std::vector<int32_t> table = {7, 3, 5, 1};
    const int64_t V = m_.config().vocab_size;
    std::vector<float> out(tokens.size() * static_cast<size_t>(V));
    SequenceInput s{static_cast<int32_t>(tokens.size()), 0, table, LogitsMode::kAll, lora};
    ForwardBatch b{tokens, {&s, 1}};
    Status st = dec_.Forward(b, *kv_, out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

 private:
  const Model& m_;
  Decoder dec_;
  std::unique_ptr<KvStore> kv_;
};

std::vector<float> AllSequences(const Model& m, const LoraAdapter* lora, const Json& ref) {
  ThreadPool pool(2);
  Runner r(m, pool);
  std::vector<float> out;
  for (const Json& seq : ref["sequences"]) {
    std::vector<float> l = r.All(seq.get<std::vector<int32_t>>(), lora);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

struct Case {
  std::string base;     // "hf" or "f32.gguf"
  std::string adapter;  // "adapter_a", "adapter_b"
  std::string file;     // adapter path under tests/fixtures/lora
};

// GoogleTest prints parameters in messages: by name, not as raw bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.base << " + " << c.file; }

class LoraLogits : public ::testing::TestWithParam<Case> {};

// PEFT adapters follow HF's q/k row order; llama.cpp's converter permutes them for GGUF arch
// llama, whose base weights are permuted the same way: each pairing is re-ordered on load.
TEST_P(LoraLogits, EqualPeftUnmergedAndMergedWithinF32Tolerance) {
  const Case& c = GetParam();
  const Json ref = Reference();
  auto base = Load(c.base == "hf" ? kLlama + "/hf" : kLlama + "/llama." + c.base);
  ASSERT_TRUE(base);
  auto lora = Adapter(kLora + "/" + c.file, *base);
  ASSERT_TRUE(lora);
  const Json& a = ref["adapters"][c.adapter];
  std::vector<float> got = AllSequences(*base, lora.get(), ref);
  std::vector<float> unmerged = ReadF32(kLora + "/" + a["logits_peft"].get<std::string>());
  std::vector<float> merged = ReadF32(kLora + "/" + a["logits_merged"].get<std::string>());
  ASSERT_EQ(got.size(), unmerged.size());
  EXPECT_LT(ScaledError(got, unmerged), 1e-4);
  EXPECT_LT(ScaledError(got, merged), 1e-4);
  // The adapter matters: the base alone is far from the reference.
  EXPECT_GT(ScaledError(AllSequences(*base, nullptr, ref), unmerged), 0.05);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraLogits,
                         ::testing::Values(Case{"hf", "adapter_a", "adapter_a"},
                                           Case{"hf", "adapter_b", "adapter_b"},
                                           Case{"f32.gguf", "adapter_a", "adapter_a"},
                                           Case{"f32.gguf", "adapter_b", "adapter_b"},
                                           Case{"hf", "adapter_a", "adapter_a.f32.gguf"},
                                           Case{"f32.gguf", "adapter_a", "adapter_a.f32.gguf"}),
                         [](const auto& info) {
                           std::string n = info.param.base + "_" + info.param.file;
                           std::replace_if(
                               n.begin(), n.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                           return n;
                         });

// Decodes one token per step with the KV cache, argmax each time.
std::vector<int32_t> Greedy(const Model& m, const LoraAdapter* lora,
                            const std::vector<int32_t>& prompt, int steps) {
  ThreadPool pool(1);
  Decoder dec(m, pool);
  const ModelConfig& c = m.config();
  auto kv =
      std::move(*KvStore::Create({c.num_layers, c.num_kv_heads, c.head_dim, 4, 16, DType::kF32}));
  std::vector<int32_t> table(16);
  std::iota(table.begin(), table.end(), 0);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  std::vector<int32_t> out;
  std::vector<int32_t> next = prompt;
  int32_t pos = 0;
  for (int i = 0; i < steps; ++i) {
    SequenceInput s{static_cast<int32_t>(next.size()), pos, table, LogitsMode::kLast, lora};
    EXPECT_TRUE(dec.Forward({next, {&s, 1}}, *kv, logits).ok());
    pos += static_cast<int32_t>(next.size());
    const int32_t t = static_cast<int32_t>(kernels::ArgMax(logits.data(), c.vocab_size));
    out.push_back(t);
    next = {t};
  }
  return out;
}

TEST(LoraGreedy, TokensEqualPeftForEveryAdapterAndBaseFormat) {
  const Json ref = Reference();
  const auto prompt = ref["prompt"].get<std::vector<int32_t>>();
  const int steps = ref["greedy_steps"].get<int>();
  for (const std::string& base_path : {kLlama + "/hf", kLlama + "/llama.f32.gguf"}) {
    SCOPED_TRACE(base_path);
    auto base = Load(base_path);
    ASSERT_TRUE(base);
    EXPECT_EQ(Greedy(*base, nullptr, prompt, steps),
              ref["greedy"]["base"].get<std::vector<int32_t>>());
    for (const char* name : {"adapter_a", "adapter_b"}) {
      auto lora = Adapter(kLora + "/" + name, *base);
      ASSERT_TRUE(lora);
      EXPECT_EQ(Greedy(*base, lora.get(), prompt, steps),
                ref["adapters"][name]["greedy"].get<std::vector<int32_t>>())
          << name;
    }
  }
}

// Three sequences (base, adapter_a, adapter_b) prefilled in one batch, then decoded together:
// each one's logits are bit for bit those it gets alone.
TEST(LoraBatch, MixedBatchEqualsEachSequenceAloneBitForBit) {
  auto base = Load(kLlama + "/llama.f32.gguf");
  ASSERT_TRUE(base);
  auto a = Adapter(kLora + "/adapter_a", *base);
  auto b = Adapter(kLora + "/adapter_b", *base);
  ASSERT_TRUE(a && b);
  const ModelConfig& c = base->config();
  const int64_t V = c.vocab_size;
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 5, 9, 33, 2}, {7, 7, 60, 12, 90, 4, 3, 8, 41}, {11, 22, 33}};
  const LoraAdapter* loras[] = {nullptr, a.get(), b.get()};
  const int kSteps = 4;

  // Alone: each sequence on its own decoder and cache, logits of every prompt position then of
  // each decoded token (fed back greedily).
  std::vector<std::vector<float>> alone(3);
  std::vector<std::vector<int32_t>> fed(3);
  for (int s = 0; s < 3; ++s) {
    ThreadPool pool(1);
    Decoder dec(*base, pool);
    auto kv =
        std::move(*KvStore::Create({c.num_layers, c.num_kv_heads, c.head_dim, 4, 8, DType::kF16}));
    std::vector<int32_t> table = {6, 2, 4, 0, 1};
    std::vector<int32_t> next = prompts[s];
    int32_t pos = 0;
    for (int step = 0; step <= kSteps; ++step) {
      SequenceInput in{static_cast<int32_t>(next.size()), pos, table, LogitsMode::kAll, loras[s]};
      std::vector<float> l(next.size() * static_cast<size_t>(V));
      ASSERT_TRUE(dec.Forward({next, {&in, 1}}, *kv, l).ok());
      alone[s].insert(alone[s].end(), l.begin(), l.end());
      pos += static_cast<int32_t>(next.size());
      next = {static_cast<int32_t>(kernels::ArgMax(l.data() + l.size() - V, V))};
      fed[s].push_back(next[0]);
    }
  }
  // Together: one decoder, one cache, all three in every step, on three threads.
  ThreadPool pool(3);
  Decoder dec(*base, pool);
  auto kv =
      std::move(*KvStore::Create({c.num_layers, c.num_kv_heads, c.head_dim, 4, 24, DType::kF16}));
  const std::vector<std::vector<int32_t>> tables = {
      {0, 1, 2, 3, 4}, {10, 9, 8, 7, 6}, {20, 15, 12, 18, 11}};
  std::vector<std::vector<float>> together(3);
  for (int step = 0; step <= kSteps; ++step) {
    std::vector<int32_t> tokens;
    std::vector<SequenceInput> seqs;
    for (int s = 0; s < 3; ++s) {
      const int32_t pos = step == 0 ? 0 : static_cast<int32_t>(prompts[s].size()) + step - 1;
      std::vector<int32_t> next = step == 0 ? prompts[s] : std::vector<int32_t>{fed[s][step - 1]};
      tokens.insert(tokens.end(), next.begin(), next.end());
      seqs.push_back(
          {static_cast<int32_t>(next.size()), pos, tables[s], LogitsMode::kAll, loras[s]});
    }
    ForwardBatch batch{tokens, seqs};
    std::vector<float> l(static_cast<size_t>(Decoder::NumLogitRows(batch) * V));
    ASSERT_TRUE(dec.Forward(batch, *kv, l).ok());
    size_t row = 0;
    for (int s = 0; s < 3; ++s) {
      const size_t n = static_cast<size_t>(seqs[s].num_tokens);
      together[s].insert(together[s].end(), l.begin() + row * V, l.begin() + (row + n) * V);
      row += n;
    }
  }
  for (int s = 0; s < 3; ++s) {
    ASSERT_EQ(together[s].size(), alone[s].size());
    EXPECT_EQ(0, std::memcmp(together[s].data(), alone[s].data(), alone[s].size() * 4))
        << "sequence " << s;
  }
}

TEST(LoraAdapter, DescribesItselfAndHashesItsContent) {
  auto base = Load(kLlama + "/hf");
  ASSERT_TRUE(base);
  auto a = Adapter(kLora + "/adapter_a", *base);
  auto b = Adapter(kLora + "/adapter_b", *base);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->rank(), 4);
  EXPECT_EQ(b->rank(), 8);
  EXPECT_EQ(a->format(), "peft");
  EXPECT_EQ(a->target_names(), (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj"}));
  EXPECT_EQ(b->matrices(0, LoraTarget::kDown).rank(), 2);  // rank_pattern
  EXPECT_TRUE(b->matrices(1, LoraTarget::kK).empty());
  EXPECT_EQ(a->content_hash().size(), 64u);
  EXPECT_NE(a->content_hash(), b->content_hash());
  EXPECT_EQ(a->content_hash(), Adapter(kLora + "/adapter_a", *base)->content_hash());
  // rsLoRA scale alpha / sqrt(r), and alpha_pattern for v_proj.
  EXPECT_FLOAT_EQ(b->matrices(0, LoraTarget::kQ).scale, 16 / std::sqrt(8.0f));
  EXPECT_FLOAT_EQ(b->matrices(0, LoraTarget::kV).scale, 4 / std::sqrt(8.0f));
  EXPECT_FLOAT_EQ(a->matrices(0, LoraTarget::kQ).scale, 2.0f);
}

// A copy of adapter_a in a temporary directory with its config edited by `edit`.
class EditedAdapter {
 public:
  explicit EditedAdapter(const std::function<void(Json&)>& edit) {
    dir_ = fs::temp_directory_path() /
           ("kinfer-lora-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    fs::copy_file(kLora + "/adapter_a/adapter_model.safetensors",
                  dir_ / "adapter_model.safetensors");
    Json cfg = *ParseJson(*ReadFileToString(kLora + "/adapter_a/adapter_config.json"), "cfg");
    edit(cfg);
    std::ofstream(dir_ / "adapter_config.json") << cfg.dump();
  }
  ~EditedAdapter() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  fs::path dir_;
  static inline int counter_ = 0;
};

std::string LoadError(const std::string& path, const Model& base, LoraLoadOptions o = {}) {
  auto a = LoadLoraAdapter(path, base, o);
  EXPECT_FALSE(a.ok()) << path << " loaded";
  return a.ok() ? "" : a.status().message();
}

TEST(LoraAdapter, RefusesWhatItCannotServeWithClearErrors) {
  auto base = Load(kLlama + "/hf");
  ASSERT_TRUE(base);
  using ::testing::HasSubstr;
  {
    EditedAdapter e([](Json& c) { c["use_dora"] = true; });
    EXPECT_THAT(LoadError(e.path(), *base), HasSubstr("'use_dora': DoRA"));
  }
  {
    EditedAdapter e([](Json& c) { c["modules_to_save"] = {"lm_head"}; });
    EXPECT_THAT(LoadError(e.path(), *base), HasSubstr("'modules_to_save'"));
  }
  {
    EditedAdapter e([](Json& c) { c["target_modules"] = {"q_proj", "c_attn"}; });
    EXPECT_THAT(LoadError(e.path(), *base), HasSubstr("has no module 'c_attn'"));
  }
  {
    EditedAdapter e([](Json& c) { c["target_modules"] = {"lm_head"}; });
    EXPECT_THAT(LoadError(e.path(), *base), HasSubstr("adapting 'lm_head' is not supported"));
  }
  {
    EditedAdapter e([](Json& c) { c["peft_type"] = "IA3"; });
    EXPECT_THAT(LoadError(e.path(), *base), HasSubstr("'IA3' adapters are not supported"));
  }
  {
    EditedAdapter e([](Json& c) { c["r"] = 8; });
    EXPECT_THAT(LoadError(e.path(), *base), HasSubstr("adapter_config.json says r = 8"));
  }
  LoraLoadOptions small;
  small.max_rank = 2;
  EXPECT_THAT(LoadError(kLora + "/adapter_a", *base, small),
              HasSubstr("rank 4 is above --max-lora-rank 2"));
  EXPECT_THAT(LoadError(kLora + "/adapter_a.f32.gguf", *base, small),
              HasSubstr("rank 4 is above --max-lora-rank 2"));
  EXPECT_THAT(LoadError(kLora + "/nowhere", *base), HasSubstr("no such file"));
  EXPECT_THAT(LoadError(kLlama + "/llama.f32.gguf", *base), HasSubstr("not a LoRA adapter"));

  // Another base: qwen3 (head_dim 16) has 64 q features, not 32; qwen2 is another GGUF arch.
  auto qwen3 = Load(KINFER_FIXTURES_DIR "/models/qwen3/hf");
  ASSERT_TRUE(qwen3);
  EXPECT_THAT(LoadError(kLora + "/adapter_a", *qwen3), HasSubstr("made for another base model"));
  auto qwen2 = Load(KINFER_FIXTURES_DIR "/models/qwen2/qwen2.f16.gguf");
  ASSERT_TRUE(qwen2);
  EXPECT_THAT(LoadError(kLora + "/adapter_a.f32.gguf", *qwen2),
              HasSubstr("the adapter is for 'llama' but the base model is 'qwen2'"));
}

TEST(LoraAdapter, ParsesPeftConfigFieldsAndRejectsBadTypes) {
  auto c = ParsePeftLoraConfig(
      R"({"r": 16, "lora_alpha": 32, "use_rslora": true, "target_modules": "all-linear",
          "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"v_proj": 2.5}, "modules_to_save": []})",
      "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->r, 16);
  EXPECT_EQ(c->lora_alpha, 32);
  EXPECT_TRUE(c->use_rslora);
  EXPECT_EQ(c->target_modules, std::vector<std::string>{"all-linear"});
  EXPECT_EQ(c->rank_pattern.at("q_proj"), 4);
  EXPECT_EQ(c->alpha_pattern.at("v_proj"), 2.5);
  for (const char* bad :
       {R"([])", R"({"r": 0})", R"({"r": "8"})", R"({"target_modules": 3})",
        R"({"rank_pattern": {"q_proj": -1}})", R"({"bias": "all"})", R"({"fan_in_fan_out": true})",
        R"({"layer_replication": [[0, 1]]})", "{"}) {
    EXPECT_FALSE(ParsePeftLoraConfig(bad, "cfg.json").ok()) << bad;
  }
}

}  // namespace
}  // namespace kinfer::model
