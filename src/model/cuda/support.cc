#include "model/cuda/support.h"

#include <string>
#include <vector>

#include <fmt/format.h>

namespace kinfer::model::cuda {

Status CheckCudaSupport(const Model& model) {
  return CheckCudaSupport(model.config(), model.path());
}

Status CheckCudaSupport(const ModelConfig& c, const std::string& source) {
  std::vector<std::string> missing;
  // Families whose loader does more than the CUDA kernels mirror (Phi-3's fused qkv/gate_up row
  // slices): refused by name even where no feature below is set (Phi-3-mini-4k).
  for (const char* arch : {"gemma2", "gemma3", "phi3", "qwen3moe", "mixtral"}) {
    if (c.architecture == arch) {
      missing.push_back(fmt::format("the {} architecture", arch));
      break;
    }
  }
  if (c.moe.num_experts > 0) {
    missing.push_back(fmt::format("mixture of experts ({} experts, top {})", c.moe.num_experts,
                                  c.moe.num_experts_used));
  }
  if (!c.sliding_layers.empty()) {
    missing.push_back("interleaved sliding-window and global layers");
  }
  if (c.rope_theta_sliding > 0) missing.push_back("a RoPE base of its own for sliding layers");
  if (c.rope_scaling.type == RopeScalingType::kLongRope) missing.push_back("LongRoPE");
  if (c.rope_dim != c.head_dim) missing.push_back("partial rotary embeddings");
  if (c.ffn_activation != FfnActivation::kSilu) missing.push_back("the GELU-tanh feed-forward");
  if (c.post_norms) missing.push_back("post-attention and post-feed-forward norms");
  if (c.embedding_scale > 0) missing.push_back("embedding scaling");
  if (c.attention_scale > 0) missing.push_back("query_pre_attn_scalar");
  if (c.attn_logit_softcap > 0 || c.final_logit_softcap > 0) {
    missing.push_back("logit soft-capping");
  }
  if (missing.empty()) return Status::Ok();
  std::string list;
  for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
  return UnimplementedError("{}: the CUDA backend does not implement {} ({}); use --device cpu",
                            source, list, c.architecture);
}

}  // namespace kinfer::model::cuda
