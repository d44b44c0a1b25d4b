// The shape and hyper-parameters of a decoder model, from an HF config.json, GGUF metadata or a
// llama2.c header: one config drives one decoder for Llama 2/3.x, Mistral, Qwen2/2.5, Qwen3,
// Gemma 2/3, Phi-3 and the mixture-of-experts families (Qwen3-MoE, Mixtral).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace kinfer::model {

class GgufFile;

// How a head's dimensions are paired for rotation.
enum class RopeLayout {
  kHalf,         // HF rotate_half / GGUF NEOX: pairs (i, i + d/2)
  kInterleaved,  // llama2.c and GGUF llama: adjacent pairs (2i, 2i + 1)
};

enum class RopeScalingType { kNone, kLinear, kLlama3, kLongRope };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
  // LongRoPE (Phi-3): per-frequency divisors for short and long contexts (rope_dim / 2 each).
  // The long ones apply when the serving context exceeds original_max_position_embeddings.
  std::vector<double> short_factor, long_factor;
  double attention_factor = 0;  // cos/sin multiplier; 0: sqrt(1 + ln(factor) / ln(original))
};

// The activation of the gated feed-forward network: act(gate) * up.
enum class FfnActivation { kSilu, kGeluTanh };

// Mixture of experts in place of the dense feed-forward network (Qwen3-MoE, Mixtral): a router
// scores every expert per token, the top `num_experts_used` run and their outputs are summed
// with the softmax weights (renormalized over the chosen ones when `normalize_weights`).
struct MoeConfig {
  int64_t num_experts = 0;  // 0: a dense model
  int64_t num_experts_used = 0;
  int64_t expert_intermediate_size = 0;
  bool normalize_weights = true;
};

struct ModelConfig {
  std::string architecture;  // "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3",
                             // "qwen3moe", "mixtral"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t rope_dim = 0;  // dimensions rotated per head (== head_dim for these families)
  RopeLayout rope_layout = RopeLayout::kHalf;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry biases (Qwen2)
  bool qk_norm = false;         // per-head RMSNorm of q and k before RoPE (Qwen3)
  int64_t sliding_window = 0;   // attend to at most this many latest positions; 0: no window
  // Which layers use the window (Gemma interleaves sliding and global layers). Empty: all of
  // them when sliding_window > 0.
  std::vector<bool> sliding_layers;
  double rope_theta_sliding = 0;  // rope base of sliding layers, unscaled (Gemma 3); 0: same

  // Gemma: embeddings multiplied by sqrt(hidden), GELU-tanh gate, a norm after attention and
  // after the feed-forward network too, query scale from query_pre_attn_scalar, soft-capping.
  FfnActivation ffn_activation = FfnActivation::kSilu;
  double embedding_scale = 0;      // 0: none
  bool post_norms = false;         // post-attention and post-feed-forward norms
  double attention_scale = 0;      // 0: 1 / sqrt(head_dim)
  double attn_logit_softcap = 0;   // scores = cap * tanh(scores / cap); 0: none (Gemma 2)
  double final_logit_softcap = 0;  // same on the logits (Gemma 2)
  MoeConfig moe;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

  bool IsSlidingLayer(int64_t layer) const {
    return sliding_window > 0 &&
           (sliding_layers.empty() || sliding_layers[static_cast<size_t>(layer)]);
  }
  double QueryScale() const;

  // Checks internal consistency (positive sizes, heads divide evenly); `source` names the file.
  Status Validate(const std::string& source) const;
  // One line: "llama: 30 layers, hidden 576, heads 9/3 x 64, ffn 1536, vocab 49152".
  std::string Summary() const;
};

// Reads an HF config.json (transformers 4 `rope_theta`/`rope_scaling` or 5 `rope_parameters`).
Result<ModelConfig> ParseHfConfig(const std::string& json_text, const std::string& path);

// Reads `<arch>.*` keys of a GGUF file.
Result<ModelConfig> ConfigFromGguf(const GgufFile& gguf);

}  // namespace kinfer::model
