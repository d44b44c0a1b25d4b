// The embedding-model configs: sentence-transformers files in the layouts sentence-transformers
// 3.x (Qwen3-Embedding) and 6.x write (tests/fixtures/embeddings, made by
// tests/reference/make_embedding_fixtures.py with sentence-transformers 6.2), GGUF pooling_type,
// and --pooler-config. Errors must name the file and field.
#include "model/pooling_config.h"

#include <gtest/gtest.h>

#include "model/gguf.h"
#include "model/model.h"

namespace kinfer::model {
namespace {

const std::string kEmbed = KINFER_FIXTURES_DIR "/embeddings";

TEST(PoolingConfig, ReadsTheQwen3EmbeddingLayout) {
  auto m = LoadModel(kEmbed + "/qwen3-embed");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->pooling().has_value());
  const PoolingConfig& p = *(*m)->pooling();
  EXPECT_EQ(p.type, PoolingType::kLast);
  EXPECT_TRUE(p.normalize);
  EXPECT_TRUE(p.matryoshka);  // config.json is_matryoshka
  EXPECT_EQ(p.dimension, 32);
  EXPECT_TRUE((*m)->has_lm_head());  // tied embeddings
}

TEST(PoolingConfig, ReadsWhatSentenceTransformers6Writes) {
  // LlamaModel without LM head, tensors without the "model." prefix, mean pooling, no Normalize.
  auto m = LoadModel(kEmbed + "/llama-mean");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->pooling().has_value());
  EXPECT_EQ((*m)->pooling()->type, PoolingType::kMean);
  EXPECT_FALSE((*m)->pooling()->normalize);
  EXPECT_FALSE((*m)->pooling()->matryoshka);
  EXPECT_FALSE((*m)->has_lm_head());
}

TEST(PoolingConfig, ReadsGgufPoolingType) {
  auto m = LoadModel(kEmbed + "/qwen3-embed/qwen3-embed.f32.gguf");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->pooling().has_value());
  EXPECT_EQ((*m)->pooling()->type, PoolingType::kLast);
  EXPECT_TRUE((*m)->pooling()->normalize);
}

TEST(PoolingConfig, GenerativeModelsHaveNone) {
  auto m = LoadModel(KINFER_FIXTURES_DIR "/models/qwen3/hf");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE((*m)->pooling().has_value());
}

const char* kModules = R"([
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
  {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
])";

TEST(PoolingConfig, ModesInBothFileFormats) {
  struct Case {
    const char* pooling;
    PoolingType want;
  } cases[] = {
      {R"({"pooling_mode_cls_token": true})", PoolingType::kCls},
      {R"({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": false})",
       PoolingType::kMean},
      {R"({"pooling_mode_lasttoken": true})", PoolingType::kLast},
      {R"({"pooling_mode": "lasttoken", "embedding_dimension": 8})", PoolingType::kLast},
      {R"({"pooling_mode": ["mean"]})", PoolingType::kMean},
      {R"({"pooling_mode": "cls"})", PoolingType::kCls},
  };
  for (const Case& c : cases) {
    auto p = ParseSentenceTransformersModules(kModules, c.pooling, "/m");
    ASSERT_TRUE(p.ok()) << c.pooling << ": " << p.status().ToString();
    EXPECT_EQ(p->type, c.want) << c.pooling;
    EXPECT_TRUE(p->normalize);
  }
}

TEST(PoolingConfig, RefusesWhatItCannotComputeNamingTheField) {
  struct Case {
    const char* modules;
    const char* pooling;
    const char* want;  // in the message
  } cases[] = {
      {kModules, R"({"pooling_mode_max_tokens": true})", "pooling_mode_max_tokens"},
      {kModules, R"({"pooling_mode": "weightedmean"})", "pooling_mode"},
      {kModules, R"({"pooling_mode": "nonsense"})", "nonsense"},
      {kModules, R"({"pooling_mode": ["mean", "cls"]})", "2 modes"},
      {kModules, R"({"pooling_mode_mean_tokens": true, "pooling_mode_lasttoken": true})",
       "pooling_mode_mean_tokens"},
      {kModules, R"({})", "no pooling mode"},
      {kModules, R"({"pooling_mode_mean_tokens": "yes"})", "pooling_mode_mean_tokens"},
      {kModules, R"([1])", "1_Pooling/config.json"},
      {R"([{"type": "sentence_transformers.models.Transformer", "path": ""},
           {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
           {"type": "sentence_transformers.models.Dense", "path": "2_Dense"}])",
       R"({"pooling_mode": "mean"})", "sentence_transformers.models.Dense"},
      {R"([{"type": "sentence_transformers.models.Transformer", "path": ""}])", "",
       "no Pooling module"},
      {R"({"not": "a list"})", "", "modules.json"},
      {R"([{"type": "x.Normalize"}, {"type": "x.Pooling", "path": "p"}])", R"({"pooling_mode":
       "mean"})",
       "Normalize before"},
  };
  for (const Case& c : cases) {
    auto p = ParseSentenceTransformersModules(c.modules, c.pooling, "/m");
    ASSERT_FALSE(p.ok()) << c.modules << " " << c.pooling;
    EXPECT_NE(p.status().message().find(c.want), std::string::npos) << p.status().message();
    EXPECT_NE(p.status().message().find("/m/"), std::string::npos) << p.status().message();
  }
}

TEST(PoolingConfig, PoolerConfigFlagOverridesFields) {
  PoolingConfig base;
  base.type = PoolingType::kLast;
  base.normalize = true;
  auto p = ApplyPoolerConfigJson(R"({"pooling_type": "mean", "normalize": false})", base);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type, PoolingType::kMean);
  EXPECT_FALSE(p->normalize);
  p = ApplyPoolerConfigJson(R"({"matryoshka_dimensions": [64, 128]})", base);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->matryoshka);
  EXPECT_EQ(p->matryoshka_dimensions, (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(p->type, PoolingType::kLast);
  p = ApplyPoolerConfigJson(R"({"is_matryoshka": true})", base);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->matryoshka);
  EXPECT_TRUE(p->matryoshka_dimensions.empty());
  for (const char* bad : {R"({"pooling_type": "MAX"})", R"({"normalise": true})", "[]",
                          R"({"matryoshka_dimensions": [0]})", R"({"normalize": 1})",
                          R"({"is_matryoshka": "yes"})", R"({"dimensions": true})", "{"}) {
    auto r = ApplyPoolerConfigJson(bad, base);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--pooler-config"), std::string::npos)
        << r.status().message();
  }
}

TEST(PoolingConfig, MatryoshkaFromConfigJson) {
  PoolingConfig p;
  ASSERT_TRUE(ApplyMatryoshkaFromHfConfig(R"({"matryoshka_dimensions": [32, 64]})", "c", &p).ok());
  EXPECT_TRUE(p.matryoshka);
  EXPECT_EQ(p.matryoshka_dimensions, (std::vector<int64_t>{32, 64}));
  PoolingConfig q;
  ASSERT_TRUE(ApplyMatryoshkaFromHfConfig(R"({"hidden_size": 8})", "c", &q).ok());
  EXPECT_FALSE(q.matryoshka);
  EXPECT_FALSE(ApplyMatryoshkaFromHfConfig(R"({"matryoshka_dimensions": "all"})", "c", &q).ok());
}

}  // namespace
}  // namespace kinfer::model
