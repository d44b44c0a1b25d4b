// LoRA adapters for a loaded base model, read from a PEFT directory (`adapter_config.json` +
// `adapter_model.safetensors`) or a llama.cpp GGUF LoRA file, checked against the base, and kept
// unmerged: per layer and projection, A [rank, in] and B^T [rank, out] with the scale PEFT uses.
//
//   KINFER_ASSIGN_OR_RETURN(auto adapter, LoadLoraAdapter("/adapters/sql", *model, {}));
//   const kernels::LoraMatrices& q = adapter->matrices(layer, LoraTarget::kQ);
//
// What is refused, with an error naming the file and field or tensor: DoRA, `modules_to_save`,
// LoRA biases, embedding/LM-head adapters, a rank above the limit, a target module the model
// lacks, tensors whose shapes do not fit the base model, a GGUF adapter of another architecture.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "kernels/lora.h"
#include "model/model.h"

namespace kinfer::model {

// The projections of a decoder layer an adapter may change.
enum class LoraTarget : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kNumLoraTargets = 7;
// PEFT's module name: "q_proj", "k_proj", ..., "down_proj".
std::string_view LoraTargetName(LoraTarget t);

// adapter_config.json, the fields that decide how the weights apply.
struct PeftLoraConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  bool use_rslora = false;                  // scale alpha / sqrt(r) instead of alpha / r
  std::vector<std::string> target_modules;  // names, or one "all-linear"
  std::map<std::string, int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  std::string base_model_name_or_path;
};

// Parses and checks adapter_config.json text; `source` names it in errors. Refuses what Kinfer
// cannot apply exactly (DoRA, modules_to_save, biases, fan_in_fan_out, other PEFT types).
Result<PeftLoraConfig> ParsePeftLoraConfig(std::string_view json_text, const std::string& source);

struct LoraLoadOptions {
  int32_t max_rank = 16;  // --max-lora-rank
};

class LoraAdapter {
 public:
  // The file or directory it was read from, and its format ("peft" or "gguf").
  const std::string& path() const { return path_; }
  std::string_view format() const { return format_; }
  // Hex SHA-256 of the adapter's files: changes whenever the weights do (prefix-cache key).
  const std::string& content_hash() const { return content_hash_; }
  // The largest rank of its modules.
  int32_t rank() const { return rank_; }
  // Bytes of weights held.
  size_t bytes() const { return bytes_; }
  // The adapted projections, as PEFT names them ("q_proj", "v_proj").
  const std::vector<std::string>& target_names() const { return target_names_; }
  // Layer count and hidden size of the base it was checked against.
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t hidden_size() const { return hidden_size_; }

  // The matrices of one projection; empty() when the adapter leaves it alone.
  const kernels::LoraMatrices& matrices(int64_t layer, LoraTarget t) const {
    return layers_[static_cast<size_t>(layer)][static_cast<size_t>(t)];
  }

 private:
  friend class LoraAdapterBuilder;
  LoraAdapter() = default;

  std::string path_;
  std::string_view format_;
  std::string content_hash_;
  int32_t rank_ = 0;
  size_t bytes_ = 0;
  int64_t hidden_size_ = 0;
  std::vector<std::string> target_names_;
  std::vector<std::array<kernels::LoraMatrices, kNumLoraTargets>> layers_;
  std::vector<std::vector<uint8_t>> storage_;  // the matrices' bytes
};

// Loads a PEFT directory or a GGUF LoRA file and checks it against `base`.
Result<std::shared_ptr<const LoraAdapter>> LoadLoraAdapter(const std::string& path,
                                                           const Model& base,
                                                           const LoraLoadOptions& options);

// The same from bytes already in memory (the fuzz target): adapter_config.json text and
// adapter_model.safetensors bytes, or a GGUF LoRA file. `name` stands for the path in errors.
// The result owns its weights; the bytes may go away after the call.
Result<std::shared_ptr<const LoraAdapter>> ParsePeftLoraAdapter(
    std::string_view config_text, std::span<const uint8_t> safetensors, const std::string& name,
    const Model& base, const LoraLoadOptions& options);
Result<std::shared_ptr<const LoraAdapter>> ParseGgufLoraAdapter(std::span<const uint8_t> gguf,
                                                                const std::string& name,
                                                                const Model& base,
                                                                const LoraLoadOptions& options);

}  // namespace kinfer::model
