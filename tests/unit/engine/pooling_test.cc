// Pooling (embedding) requests through the engine, against sentence-transformers: the pooled
// hidden states of tests/fixtures/embeddings (made by tests/reference/make_embedding_fixtures.py)
// for last-token and mean pooling, HF and GGUF, whole or in prefill chunks, batched with each
// other and with generation, and recomputed after preemption.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/json.h"
#include "core/mapped_file.h"
#include "engine/engine.h"
#include "model/backend.h"
#include "model/model.h"

namespace kinfer::engine {
namespace {

const std::string kEmbed = KINFER_FIXTURES_DIR "/embeddings";

struct Reference {
  std::vector<std::vector<int32_t>> token_ids;
  std::vector<std::vector<float>> pooled;  // sentence-transformers without Normalize
};

Reference LoadReference(const std::string& dir, const std::string& which = "pooled") {
  Reference r;
  auto text = ReadFileToString(dir + "/reference.json");
  EXPECT_TRUE(text.ok());
  auto j = ParseJson(*text, "reference.json");
  EXPECT_TRUE(j.ok());
  const int64_t hidden = (*j)["hidden_size"].get<int64_t>();
  for (const Json& ids : (*j)["token_ids"]) r.token_ids.push_back(ids.get<std::vector<int32_t>>());
  auto f = MappedFile::Open(dir + "/" + (*j)["files"][which].get<std::string>());
  EXPECT_TRUE(f.ok());
  const float* p = reinterpret_cast<const float*>((*f)->data());
  for (size_t i = 0; i < r.token_ids.size(); ++i) {
    r.pooled.emplace_back(p + i * static_cast<size_t>(hidden), p + (i + 1) * hidden);
  }
  return r;
}

// Largest |a - b| relative to the largest |b|.
double RelError(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return err / scale;
}

struct Result {
  std::vector<float> embedding;
  std::vector<int32_t> tokens;  // generation requests
  Usage usage;
  int outputs = 0;
  bool finished = false;
};

// Submits every reference input (and `extra` generation requests) to one engine and steps it
// until all have finished.
std::map<std::string, Result> RunAll(const model::Model& m, const Reference& ref,
                                     model::PoolingType type, EngineOptions opts,
                                     std::vector<Request> extra = {},
                                     EngineStats* stats = nullptr) {
  opts.start_thread = false;
  opts.kv_cache_dtype = DType::kF32;
  auto e = Engine::Create(m, opts);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  std::map<std::string, Result> out;
  auto collect = [&out](RequestOutput o) {
    Result& r = out[o.request_id];
    r.outputs++;
    r.finished = o.finished;
    if (!o.embedding.empty()) r.embedding = o.embedding;
    for (auto& s : o.seqs) r.tokens.insert(r.tokens.end(), s.token_ids.begin(), s.token_ids.end());
    r.usage = o.usage;
  };
  for (size_t i = 0; i < ref.token_ids.size(); ++i) {
    Request r;
    r.id = "e" + std::to_string(i);
    r.prompt_tokens = ref.token_ids[i];
    r.pooling = PoolingParams{type};
    Status st = (*e)->Submit(std::move(r), collect);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  for (Request& r : extra) EXPECT_TRUE((*e)->Submit(std::move(r), collect).ok());
  (*e)->RunUntilIdle();
  EngineStats s = (*e)->Stats();
  EXPECT_EQ(s.num_free_blocks, s.num_blocks) << "every block is back in the pool";
  if (stats) *stats = s;
  return out;
}

void ExpectMatches(const std::map<std::string, Result>& out, const Reference& ref,
                   double tolerance) {
  for (size_t i = 0; i < ref.token_ids.size(); ++i) {
    const Result& r = out.at("e" + std::to_string(i));
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.outputs, 1) << "one output, the last, per pooling request";
    EXPECT_EQ(r.usage.prompt_tokens, static_cast<int32_t>(ref.token_ids[i].size()));
    EXPECT_EQ(r.usage.completion_tokens, 0);
    EXPECT_LT(RelError(r.embedding, ref.pooled[i]), tolerance) << "input " << i;
  }
}

struct Case {
  const char* model;
  model::PoolingType type;
};

class PoolingReference : public ::testing::TestWithParam<Case> {};

TEST_P(PoolingReference, MatchesSentenceTransformersWholeAndChunked) {
  const Case c = GetParam();
  const std::string dir =
      kEmbed + "/" + std::string(c.model).substr(0, std::string(c.model).find('/'));
  auto m = model::LoadModel(kEmbed + "/" + c.model);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const Reference ref = LoadReference(dir);
  for (int32_t budget : {256, 7}) {  // 7: prompts split into prefill chunks over many steps
    EngineOptions o;
    o.scheduler.max_num_batched_tokens = budget;
    o.num_threads = 2;
    ExpectMatches(RunAll(**m, ref, c.type, o), ref, 2e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PoolingReference,
                         ::testing::Values(Case{"qwen3-embed", model::PoolingType::kLast},
                                           Case{"qwen3-embed/qwen3-embed.f32.gguf",
                                                model::PoolingType::kLast},
                                           Case{"llama-mean", model::PoolingType::kMean}));

TEST(Pooling, PreemptedMeanPoolingIsNotCountedTwice) {
  // A generation admitted first grows block by block; when the small cache runs out, the newest
  // running sequences (mean-pooling prefills, part way through) are preempted and recomputed.
  auto m = model::LoadModel(kEmbed + "/qwen3-embed");
  ASSERT_TRUE(m.ok());
  const Reference ref = LoadReference(kEmbed + "/qwen3-embed", "pooled_mean");
  EngineOptions o;
  o.block_size = 4;
  o.scheduler.max_num_batched_tokens = 6;
  o.max_model_len = 96;
  model::KvStoreConfig kc{(*m)->config().num_layers,
                          (*m)->config().num_kv_heads,
                          (*m)->config().head_dim,
                          4,
                          1,
                          DType::kF32};
  o.kv_cache_bytes = static_cast<int64_t>(model::KvStore::BytesFor(kc)) * 26;
  Request g;
  g.id = "gen";
  g.prompt_tokens = {5, 6, 7, 8};
  g.params.temperature = 0;
  g.params.max_tokens = 80;
  g.params.ignore_eos = true;
  g.priority = -1;  // runs first and is never the victim
  std::vector<Request> extra;
  extra.push_back(std::move(g));
  EngineStats stats;
  ExpectMatches(RunAll(**m, ref, model::PoolingType::kMean, o, std::move(extra), &stats), ref,
                2e-5);
  EXPECT_GT(stats.num_preemptions, 0);
}

TEST(Pooling, BatchedWithGenerationChangesNeither) {
  auto m = model::LoadModel(kEmbed + "/qwen3-embed");  // tied embeddings: it can also generate
  ASSERT_TRUE(m.ok());
  const Reference ref = LoadReference(kEmbed + "/qwen3-embed");
  auto generate = [] {
    Request g;
    g.id = "gen";
    g.prompt_tokens = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    g.params.temperature = 0;
    g.params.max_tokens = 12;
    g.params.ignore_eos = true;
    return g;
  };
  EngineOptions o;
  o.scheduler.max_num_batched_tokens = 16;
  auto mixed = RunAll(**m, ref, model::PoolingType::kLast, o, {generate()});
  ExpectMatches(mixed, ref, 2e-5);
  // The generation alone: same tokens.
  auto e = Engine::Create(**m, [] {
    EngineOptions a;
    a.start_thread = false;
    a.kv_cache_dtype = DType::kF32;
    return a;
  }());
  ASSERT_TRUE(e.ok());
  std::vector<int32_t> alone;
  ASSERT_TRUE((*e)->Submit(generate(),
                           [&](RequestOutput o) {
                             for (auto& s : o.seqs)
                               alone.insert(alone.end(), s.token_ids.begin(), s.token_ids.end());
                           })
                  .ok());
  (*e)->RunUntilIdle();
  EXPECT_EQ(mixed.at("gen").usage.completion_tokens, 12);
  ASSERT_EQ(alone.size(), 12u);
  EXPECT_EQ(mixed.at("gen").tokens, alone);
  EXPECT_TRUE(mixed.at("gen").embedding.empty());
}

TEST(Pooling, ModelWithoutLmHeadRefusesGeneration) {
  auto m = model::LoadModel(kEmbed + "/llama-mean");
  ASSERT_TRUE(m.ok());
  EngineOptions o;
  o.start_thread = false;
  auto e = Engine::Create(**m, o);
  ASSERT_TRUE(e.ok());
  Request r;
  r.id = "g";
  r.prompt_tokens = {1, 2, 3};
  Status st = (*e)->Submit(std::move(r), [](RequestOutput) {});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no LM head"), std::string::npos) << st.message();
}

TEST(Pooling, InputMayFillTheWholeContext) {
  auto m = model::LoadModel(kEmbed + "/qwen3-embed");
  ASSERT_TRUE(m.ok());
  EngineOptions o;
  o.start_thread = false;
  o.max_model_len = 8;
  auto e = Engine::Create(**m, o);
  ASSERT_TRUE(e.ok());
  Request fits;
  fits.id = "a";
  fits.prompt_tokens.assign(8, 5);
  fits.pooling = PoolingParams{};
  EXPECT_TRUE((*e)->Submit(fits, [](RequestOutput) {}).ok());
  Request longer = fits;
  longer.id = "b";
  longer.prompt_tokens.push_back(5);
  Status st = (*e)->Submit(longer, [](RequestOutput) {});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("maximum context length is 8"), std::string::npos);
  (*e)->RunUntilIdle();
}

// A backend with no hidden-state output (the CUDA one today) refuses a batch with pooling
// sequences with Unimplemented, and runs generation-only batches as Forward.
TEST(Pooling, BackendWithoutHiddenStatesRefusesPoolingBatches) {
  struct LogitsOnly : model::Backend {
    std::string Describe() const override { return "test"; }
    kinfer::Result<int64_t> Reserve(int64_t) override { return int64_t{0}; }
    Status AllocateKvCache(const model::KvStoreConfig&, int64_t) override { return Status::Ok(); }
    Status Forward(const model::ForwardBatch&, std::span<float>) override {
      ++forwards;
      return Status::Ok();
    }
    void CopyKvSlots(model::KvBlockGroup, int32_t, int32_t, int32_t) override {}
    int forwards = 0;
  } backend;
  const std::vector<int32_t> tokens = {1, 2, 3}, blocks = {0};
  model::SequenceInput seq;
  seq.num_tokens = 3;
  seq.block_table = blocks;
  seq.logits = model::LogitsMode::kNone;
  seq.hidden = model::HiddenMode::kLast;
  std::vector<model::SequenceInput> seqs = {seq};
  std::vector<float> logits, hidden(64);
  Status st = backend.ForwardPooling({tokens, seqs}, logits, hidden);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented) << st.ToString();
  EXPECT_NE(st.message().find("--device cpu"), std::string::npos) << st.message();
  EXPECT_EQ(backend.forwards, 0);
  seqs[0].hidden = model::HiddenMode::kNone;
  EXPECT_TRUE(backend.ForwardPooling({tokens, seqs}, logits, {}).ok());
  EXPECT_EQ(backend.forwards, 1);
}

}  // namespace
}  // namespace kinfer::engine
