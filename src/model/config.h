// The shape and hyper-parameters of a decoder model, from an HF config.json, GGUF metadata or a
// llama2.c header: one config drives one decoder for Llama 2/3.x, Mistral, Qwen2/2.5 and Qwen3.
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

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // "llama", "mistral", "qwen2", "qwen3"
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
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

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
