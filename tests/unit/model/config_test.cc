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

TEST(Config, AbsurdLayerCountIsRefused) {
  for (const char* layers : {"0", "-3", "1000000000"}) {
    const std::string json =
        std::string(R"({"architectures":["Gemma3ForCausalLM"],"hidden_size":64,)") +
        R"("intermediate_size":128,"num_attention_heads":4,)" + R"("num_hidden_layers":)" + layers +
        "}";
    EXPECT_THAT(ParseHfConfig(json, "config.json").status().message(),
                HasSubstr(std::string("config.json: field 'num_hidden_layers' says ") + layers +
                          " layers; a model has 1 to 4096"));
  }
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

// Gemma 3 as transformers 4 wrote it (rope_theta + rope_local_base_freq + linear rope_scaling,
// no layer_types: five sliding layers to one global) and as transformers 5 writes it.
TEST(Config, GemmaLayersRopeAndScales) {
  auto v4 = Parse(
      R"(,"architectures":["Gemma3ForCausalLM"],"num_hidden_layers":12,"head_dim":256,"hidden_activation":"gelu_pytorch_tanh","query_pre_attn_scalar":256,"sliding_window":512,"rope_theta":1000000,"rope_local_base_freq":10000,"rope_scaling":{"rope_type":"linear","factor":8.0},"final_logit_softcapping":null)");
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  EXPECT_EQ(v4->architecture, "gemma3");
  EXPECT_EQ(v4->ffn_activation, FfnActivation::kGeluTanh);
  EXPECT_TRUE(v4->post_norms && v4->qk_norm && v4->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(v4->embedding_scale, 8.0);  // sqrt(64)
  EXPECT_DOUBLE_EQ(v4->QueryScale(), 1.0 / 16);
  EXPECT_EQ(v4->rope_theta, 1e6);
  EXPECT_EQ(v4->rope_theta_sliding, 1e4);
  EXPECT_EQ(v4->rope_scaling.type, RopeScalingType::kLinear);
  for (int64_t l = 0; l < 12; ++l) EXPECT_EQ(v4->IsSlidingLayer(l), l % 6 != 5) << l;
  EXPECT_EQ(v4->final_logit_softcap, 0);

  auto v5 = Parse(
      R"(,"architectures":["Gemma2ForCausalLM"],"num_hidden_layers":2,"query_pre_attn_scalar":144,"sliding_window":4096,"attn_logit_softcapping":50.0,"final_logit_softcapping":30.0,"layer_types":["sliding_attention","full_attention"],"rope_parameters":{"rope_type":"default","rope_theta":10000})");
  ASSERT_TRUE(v5.ok()) << v5.status().ToString();
  EXPECT_TRUE(v5->IsSlidingLayer(0));
  EXPECT_FALSE(v5->IsSlidingLayer(1));
  EXPECT_DOUBLE_EQ(v5->QueryScale(), 1.0 / 12);
  EXPECT_EQ(v5->attn_logit_softcap, 50.0);
  EXPECT_EQ(v5->final_logit_softcap, 30.0);

  EXPECT_THAT(Parse(R"(,"architectures":["Gemma3ForCausalLM"],"layer_types":["sliding_attention"])")
                  .status()
                  .message(),
              HasSubstr("field 'layer_types': 1 entries for 2 layers"));
}

TEST(Config, MixtureOfExpertsFields) {
  auto q = Parse(
      R"(,"architectures":["Qwen3MoeForCausalLM"],"num_experts":128,"num_experts_per_tok":8,"moe_intermediate_size":768,"norm_topk_prob":true)");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->moe.num_experts, 128);
  EXPECT_EQ(q->moe.num_experts_used, 8);
  EXPECT_EQ(q->moe.expert_intermediate_size, 768);
  EXPECT_TRUE(q->moe.normalize_weights);
  EXPECT_TRUE(q->qk_norm);
  auto m = Parse(
      R"(,"architectures":["MixtralForCausalLM"],"num_local_experts":8,"num_experts_per_tok":2)");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->moe.expert_intermediate_size, 128);  // intermediate_size is the experts'
  EXPECT_THAT(
      Parse(
          R"(,"architectures":["MixtralForCausalLM"],"num_local_experts":2,"num_experts_per_tok":3)")
          .status()
          .message(),
      HasSubstr("3 experts used per token out of 2"));
  EXPECT_THAT(
      Parse(
          R"(,"architectures":["Qwen3MoeForCausalLM"],"num_experts":4,"num_experts_per_tok":2,"moe_intermediate_size":8,"mlp_only_layers":[1])")
          .status()
          .message(),
      HasSubstr("dense layers among the expert layers"));
}

TEST(Config, Phi3LongRopeAndPartialRotary) {
  auto v4 = Parse(
      R"(,"architectures":["Phi3ForCausalLM"],"max_position_embeddings":131072,"original_max_position_embeddings":4096,"partial_rotary_factor":0.75,"rope_scaling":{"type":"longrope","short_factor":[1,1,1,1,1,1],"long_factor":[1,2,3,4,5,6]})");
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  EXPECT_EQ(v4->rope_dim, 12);  // 16 * 0.75
  EXPECT_EQ(v4->rope_scaling.type, RopeScalingType::kLongRope);
  EXPECT_EQ(v4->rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(v4->rope_scaling.factor, 32.0);
  EXPECT_THAT(
      Parse(
          R"(,"architectures":["Phi3ForCausalLM"],"rope_scaling":{"type":"longrope","short_factor":[1,1],"long_factor":[1,2]})")
          .status()
          .message(),
      HasSubstr("longrope factors: expected 8 values each"));
}

}  // namespace
}  // namespace kinfer::model
