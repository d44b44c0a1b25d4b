// Which models the CUDA backend takes (model/cuda/support.h), checked on the host: the families
// it computes load, the others (Gemma 2/3, Phi-3, Qwen3-MoE, Mixtral, from HF and GGUF files)
// are refused before anything reaches the GPU, with an error naming the architecture and the
// features it lacks and pointing at --device cpu. No GPU needed: these run in CI's cuda stage.
#include "model/cuda/support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "model/cuda/cuda_backend.h"
#include "model/model.h"

namespace kinfer::model::cuda {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Model> Load(const std::string& rel) {
  LoadOptions o;
  o.pack_weights = false;
  auto m = LoadModel(KINFER_FIXTURES_DIR "/models/" + rel, o);
  EXPECT_TRUE(m.ok()) << rel << ": " << m.status().ToString();
  return m.ok() ? std::move(*m) : nullptr;
}

TEST(CudaSupport, TakesTheFamiliesItComputes) {
  for (const char* rel :
       {"llama/hf", "llama/llama.q8_0.gguf", "llama3/hf", "mistral/hf", "qwen2/hf", "qwen3/hf"}) {
    auto m = Load(rel);
    ASSERT_TRUE(m);
    EXPECT_TRUE(CheckCudaSupport(*m).ok()) << rel << ": " << CheckCudaSupport(*m).ToString();
  }
}

TEST(CudaSupport, RefusesTheOtherFamiliesNamingWhatIsMissing) {
  struct Case {
    const char* rel;
    const char* arch;
    const char* feature;
  };
  for (const Case& c : {
           Case{"gemma3/hf", "gemma3", "interleaved sliding-window and global layers"},
           Case{"gemma3/gemma3.q8_0.gguf", "gemma3", "post-attention and post-feed-forward norms"},
           Case{"gemma2/hf", "gemma2", "logit soft-capping"},
           Case{"gemma2/gemma2.q8_0.gguf", "gemma2", "the GELU-tanh feed-forward"},
           Case{"phi3/hf", "phi3", "LongRoPE"},
           Case{"phi3/phi3.q8_0.gguf", "phi3", "the phi3 architecture"},
           Case{"qwen3moe/hf", "qwen3moe", "mixture of experts"},
           Case{"qwen3moe/qwen3moe.q4_0.gguf", "qwen3moe", "mixture of experts"},
           Case{"mixtral/hf", "mixtral", "mixture of experts"},
           Case{"mixtral/mixtral.q8_0.gguf", "", "mixture of experts"},
       }) {
    SCOPED_TRACE(c.rel);
    auto m = Load(c.rel);
    ASSERT_TRUE(m);
    const Status s = CheckCudaSupport(*m);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
    EXPECT_THAT(s.message(), HasSubstr(m->path()));
    EXPECT_THAT(s.message(), HasSubstr(c.arch));
    EXPECT_THAT(s.message(), HasSubstr(c.feature));
    EXPECT_THAT(s.message(), HasSubstr("use --device cpu"));
    // The backend refuses before it touches a device, so this holds on a machine without one.
    auto b = CreateCudaBackend(*m, {});
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().message(), s.message());
  }
}

}  // namespace
}  // namespace kinfer::model::cuda
