// The decoder forward pass for every supported family, over a flattened batch that mixes
// prefill chunks and decode tokens of many sequences. Keys and values are read and written
// through each sequence's block table in the KV store (paged attention).
//
// Each token's result depends only on its own sequence: matmuls never split a dot product
// across threads or batch rows, and attention reads a sequence's cache in position order. So a
// request's logits are bit-identical whether it runs alone or batched with others.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/moe.h"
#include "model/kv_store.h"
#include "model/model.h"

namespace kinfer::model {

class LoraAdapter;
class LoraBatch;
enum class LoraTarget : uint8_t;

enum class LogitsMode : uint8_t {
  kNone,  // no logits (a prefill chunk that does not reach the end of the prompt)
  kLast,  // logits of the last new token
  kAll,   // logits of every new token (prompt logprobs, reference tests)
};

// Final hidden states (after the last norm, hidden_size floats a row) that pooling reads.
enum class HiddenMode : uint8_t {
  kNone,
  kLast,  // the last new token's
  kAll,   // every new token's
};

// One sequence's part of a forward batch.
struct SequenceInput {
  int32_t num_tokens = 0;  // new tokens this step, >= 1
  int32_t start_pos = 0;   // tokens of this sequence already in the KV cache
  // Physical KV blocks holding positions [0, start_pos + num_tokens), in order.
  std::span<const int32_t> block_table;
  LogitsMode logits = LogitsMode::kLast;
  // The LoRA adapter its tokens run with (lora_adapter.h), loaded for this model; null: the base.
  const LoraAdapter* lora = nullptr;
  HiddenMode hidden = HiddenMode::kNone;  // final hidden states for pooling requests
  // When the KV store has a sliding-window group: its blocks, same indexing, where only those
  // that the new tokens' windows reach need to be valid (the others may be -1, freed).
  std::span<const int32_t> sliding_block_table = {};
};

struct ForwardBatch {
  std::span<const int32_t> tokens;  // every new token, sequence after sequence
  std::span<const SequenceInput> seqs;
};

class Decoder {
 public:
  // `model` and `pool` must outlive the decoder. `context_length` is the longest sequence the
  // caller will run (its max model length; 0: the model's trained length before any extension):
  // Phi-3's LongRoPE uses its long-context factors for every position when it exceeds the
  // original context, as llama.cpp does, so a token's result never depends on the batch.
  Decoder(const Model& model, ThreadPool& pool, int64_t context_length = 0);
  ~Decoder();

  // Rows of logits (vocab_size floats each) that Forward writes for `batch`, in sequence order.
  static int64_t NumLogitRows(const ForwardBatch& batch);

  // Runs the batch: writes the new tokens' keys and values into `kv` and the requested logits
  // rows into `logits` (NumLogitRows(batch) * vocab_size floats). Rejects malformed batches
  // (token ids out of range, block tables too short) without touching the cache.
  Status Forward(const ForwardBatch& batch, KvStore& kv, std::span<float> logits);
  // The same, also writing the hidden-state rows the sequences ask for into `hidden`
  // (NumHiddenRows(batch) * hidden_size floats, in sequence order).
  Status Forward(const ForwardBatch& batch, KvStore& kv, std::span<float> logits,
                 std::span<float> hidden);
  static int64_t NumHiddenRows(const ForwardBatch& batch);

  const Model& model() const { return model_; }

  // The checks Forward makes before touching the cache (every backend makes them): sequence
  // sizes, block tables long enough with ids inside the store, token ids in the vocabulary, a
  // large enough logits buffer.
  static Status Validate(const ModelConfig& cfg, const ForwardBatch& batch, const KvStoreConfig& kc,
                         size_t logits_size);

 private:
  void Reserve(int64_t tokens);
  void ComputeRope(int64_t tokens);
  // Token t's KV head `kv_head` and the query heads that share it, out of the projections: the
  // biases, q/k norms and RoPE.
  void PrepareQkv(int64_t layer, int64_t t, int64_t kv_head);
  // Writes token t's key and value of `kv_head` into the cache.
  void WriteKvHead(int64_t layer, const ForwardBatch& batch, KvStore& kv, int64_t t,
                   int64_t kv_head);
  // Attention of every token, an item per token and KV head; `prepare`: each item first runs
  // PrepareQkv and WriteKvHead for itself (a batch where no token reads another's keys).
  void Attention(int64_t layer, const ForwardBatch& batch, KvStore& kv, bool prepare);
  // The block table `layer` reads and writes for `s`.
  static std::span<const int32_t> TableFor(const KvStore& kv, int64_t layer,
                                           const SequenceInput& s);
  // x += attention(norm(x)) for one layer (with Gemma's post-norm).
  void AttentionBlock(int64_t layer, const ForwardBatch& batch, KvStore& kv);
  // x += ffn(norm(x)): the dense gated FFN (SiLU or GELU-tanh) or the mixture of experts.
  void FeedForwardBlock(int64_t layer, int64_t tokens);
  // Mixture-of-experts models take no LoRA in their FFN (LoadLoraAdapter refuses one).
  void MixtureOfExperts(const LayerWeights& layer, int64_t tokens);
  // out += the batch's LoRA products for projection `target` of `layer` (lora_batch.h).
  void AddLora(int64_t layer, LoraTarget target, const float* in, int64_t in_dim, float* out,
               int64_t out_dim);

  // Rotary frequencies and the cos/sin multiplier (LongRoPE's attention factor) of one kind of
  // layer; Gemma 3's sliding layers have their own base.
  struct RopeTable {
    std::vector<float> inv_freq;  // [rope_dim / 2]
    float mscale = 1.0f;
    std::vector<float> cos, sin;  // [tokens][rope_dim / 2] of this step
  };
  void FillRope(RopeTable& table, int64_t tokens) const;

  const Model& model_;
  const ModelConfig& cfg_;
  ThreadPool& pool_;
  RopeTable rope_, rope_sliding_;
  bool separate_sliding_rope_ = false;

  // Workspace, grown to the largest batch seen; nothing is allocated per token after that.
  int64_t capacity_ = 0;
  std::vector<int32_t> pos_, seq_of_;
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, logits_in_;
  std::vector<float> router_logits_, expert_weights_;
  std::vector<int32_t> expert_ids_;
  kernels::MoeWorkspace moe_;
  std::unique_ptr<LoraBatch> lora_;  // the batch's tokens grouped by adapter
};

// The rotary frequencies a config implies: 1/theta^(2i/d), then rope scaling (linear, llama3,
// LongRoPE's short or long factors) and GGUF per-frequency divisors (`freq_factors`, may be
// empty).
std::vector<float> RopeInverseFrequencies(const ModelConfig& config,
                                          std::span<const float> freq_factors,
                                          bool long_context = false);

// LongRoPE's multiplier of cos and sin: the configured attention factor, else
// sqrt(1 + ln(factor) / ln(original context)) (1 without LongRoPE or extension).
float RopeAttentionFactor(const ModelConfig& config);

}  // namespace kinfer::model
