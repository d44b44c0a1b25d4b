// A loaded decoder model: its config and weight views into the mapped files, whatever the
// format (HF safetensors directory, GGUF, llama2.c .bin). Weights stay in their stored type;
// only the small 1-D tensors (norms, biases, rope factors) are converted to f32 at load.
//
//   KINFER_ASSIGN_OR_RETURN(auto model, LoadModel("/models/smollm2.gguf"));
//   fmt::print("{}\n", model->config().Summary());
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/tensor.h"
#include "model/config.h"
#include "model/load_progress.h"
#include "model/pooling_config.h"

namespace kinfer::kernels {
class PackedMatrix;
}

namespace kinfer::model {

class GgufFile;
class SafetensorsModel;

enum class ModelFormat { kHuggingFace, kGguf, kLlama2c };
std::string_view ModelFormatName(ModelFormat f);

struct LayerWeights {
  std::vector<float> attn_norm;  // [hidden]
  TensorView wq, wk, wv,
      wo;  // [heads*head_dim, hidden], [kv*head_dim, hidden] x2, [hidden, heads*head_dim]
  std::vector<float> bq, bk, bv;      // biases, empty when the family has none
  std::vector<float> q_norm, k_norm;  // [head_dim], Qwen3 only
  std::vector<float> ffn_norm;        // [hidden]
  TensorView w_gate, w_up;            // [ffn, hidden]; empty in a mixture-of-experts layer
  TensorView w_down;                  // [hidden, ffn]
  // Gemma: norms of the attention and feed-forward outputs before the residual add.
  std::vector<float> post_attn_norm, post_ffn_norm;  // [hidden]; empty elsewhere
  // Mixture of experts (config.moe.num_experts > 0): the router and each expert's matrices, in
  // the file's type (slices of GGUF's stacked ffn_*_exps tensors or HF's per-expert tensors).
  TensorView router;                               // [experts, hidden]
  std::vector<TensorView> expert_gate, expert_up;  // [expert_ffn, hidden] each
  std::vector<TensorView> expert_down;             // [hidden, expert_ffn] each
};

struct ModelWeights {
  TensorView token_embedding;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;         // [hidden]
  TensorView lm_head;                    // [vocab, hidden]; the embedding when tied
  std::vector<float> rope_freq_factors;  // [rope_dim/2] divisors of each frequency; may be empty
};

class Model {
 public:
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  ModelFormat format() const { return format_; }
  // The path the model was loaded from (file or directory).
  const std::string& path() const { return path_; }
  // The parsed GGUF file when the format is GGUF (its tokenizer and chat template live there).
  const GgufFile* gguf() const { return gguf_.get(); }
  // How the model pools hidden states into an embedding, when it is an embedding model (a
  // sentence-transformers directory or a GGUF with a pooling type); nullopt for a generative one.
  const std::optional<PoolingConfig>& pooling() const { return pooling_; }
  // False for a base model saved without an LM head (e.g. a sentence-transformers export): it
  // gives hidden states for pooling, never logits.
  bool has_lm_head() const { return weights_.lm_head.data != nullptr; }

  // Bytes of weights as stored, and the number of parameters.
  size_t weight_bytes() const;
  int64_t num_parameters() const;

  ~Model();

 private:
  friend class ModelBuilder;
  Model() = default;

  std::string path_;
  ModelFormat format_ = ModelFormat::kGguf;
  ModelConfig config_;
  ModelWeights weights_;
  std::optional<PoolingConfig> pooling_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  std::unique_ptr<MappedFile> file_;  // llama2.c
  // Matrices repacked for this CPU's MatMul (kernels/pack.h); weights_ points into them.
  std::vector<std::unique_ptr<kernels::PackedMatrix>> packed_;
};

struct LoadOptions {
  // Repacking progress (load_progress.h), for loads that take a while.
  LoadProgressFn progress;
  // Repack the matrices of a GGUF file or an HF checkpoint where MatMul reads them faster on this
  // CPU (kernels::ShouldPack), dropping the mapped pages they came from, so memory holds one copy.
  // Off for tools that only describe the file.
  bool pack_weights = true;
};

// Loads a model from a GGUF file, an HF directory (config.json + safetensors) or a llama2.c .bin.
Result<std::unique_ptr<Model>> LoadModel(const std::string& path, const LoadOptions& options = {});

}  // namespace kinfer::model
