// config.json parsing: each family's defaults, both rope conventions, and clear errors.
#include "model/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kinfer::model {
namespace {

using ::testing::HasSubstr;

constexpr const char* kBase =
    R"("hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100)";

Result<ModelConfig> Parse(const std::string& extra) {
  return ParseHfConfig(std::string("{") + kBase + extra + "}", "config.json");
}

TEST(Config, FamilyDefaults) {
  auto q2 = Parse(R"(,"architectures":["Qwen2ForCausalLM"])");
  ASSERT_TRUE(q2.ok()) << q2.status().ToString();
  EXPECT_TRUE(q2->attention_bias);
  EXPECT_EQ(q2->num_kv_heads, 4);
  EXPECT_EQ(q2->head_dim, 16);
  auto q3 = Parse(R"(,"architectures":["Qwen3ForCausalLM"],"head_dim":32)");
  ASSERT_TRUE(q3.ok());
  EXPECT_TRUE(q3->qk_norm);
  EXPECT_EQ(q3->head_dim, 32);
  auto mistral = Parse(R"(,"model_type":"mistral","sliding_window":4096,"eos_token_id":[2,3])");
  ASSERT_TRUE(mistral.ok());
  EXPECT_EQ(mistral->sliding_window, 4096);
  EXPECT_EQ(mistral->eos_token_ids, (std::vector<int64_t>{2, 3}));
}

TEST(Config, RopeScalingInBothConventions) {
  auto legacy = Parse(
      R"(,"model_type":"llama","rope_theta":500000,"rope_scaling":{"type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192})");
  ASSERT_TRUE(legacy.ok()) << legacy.status().ToString();
  EXPECT_EQ(legacy->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(legacy->rope_theta, 500000);
  auto modern = Parse(
      R"(,"model_type":"llama","rope_parameters":{"rope_type":"llama3","rope_theta":500000,"factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192})");
  ASSERT_TRUE(modern.ok());
  EXPECT_EQ(modern->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(modern->rope_theta, 500000);
  auto yarn = Parse(R"(,"model_type":"qwen2","rope_scaling":{"type":"yarn","factor":4})");
  EXPECT_THAT(yarn.status().message(), HasSubstr("rope scaling type 'yarn' is not supported"));
}

TEST(Config, ErrorsNameTheFieldAndFile) {
  EXPECT_THAT(Parse(R"(,"model_type":"gpt2")").status().message(),
              HasSubstr("config.json: architecture '' (model_type 'gpt2') is not supported"));
  EXPECT_THAT(ParseHfConfig(R"({"model_type":"llama","hidden_size":"64"})", "config.json")
                  .status()
                  .message(),
              HasSubstr("config.json: field 'hidden_size': expected an integer, got string"));
  EXPECT_THAT(ParseHfConfig(R"({"model_type":"llama"})", "config.json").status().message(),
              HasSubstr("missing field 'hidden_size'"));
  EXPECT_THAT(Parse(R"(,"model_type":"llama","num_key_value_heads":3)").status().message(),
              HasSubstr("4 attention heads are not a multiple of 3 key/value heads"));
  EXPECT_THAT(ParseHfConfig("{not json", "config.json").status().message(),
              HasSubstr("config.json: invalid JSON"));
}

}  // namespace
}  // namespace kinfer::model
