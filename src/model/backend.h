// What the engine runs a model on: a backend owns the KV cache memory (host or device) and runs
// forward passes over it. The CPU decoder (cpu_backend.h) and the CUDA backend (model/cuda/)
// implement it, so the engine, scheduler and server are the same on every device.
//
//   std::unique_ptr<Backend> b = ...;                      // CpuBackend or CreateCudaBackend
//   KINFER_ASSIGN_OR_RETURN(int64_t budget, b->Reserve(max_tokens));
//   KINFER_RETURN_IF_ERROR(b->AllocateKvCache(kv_config, max_model_len));
//   KINFER_RETURN_IF_ERROR(b->Forward(batch, logits));     // engine thread only
//
// Every backend keeps the batch-invariance contract of decoder.h: a sequence's logits do not
// depend on what else is in its batch.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"
#include "model/decoder.h"
#include "model/kv_store.h"

namespace kinfer::model {

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)": for logs.
  virtual std::string Describe() const = 0;

  // Sizes the backend's working memory for steps of up to `max_tokens` tokens (larger batches
  // still run, growing it), then returns how many bytes the KV cache may take when the user
  // gave no size, or 0 when the backend has no limit of its own (host memory: the engine's
  // rule applies).
  virtual Result<int64_t> Reserve(int64_t max_tokens) = 0;

  // Allocates the KV cache: `config.num_blocks` blocks, for positions below `max_positions`.
  // Called once, before the first Forward.
  virtual Status AllocateKvCache(const KvStoreConfig& config, int64_t max_positions) = 0;

  // Runs `batch` as Decoder::Forward does: writes the new tokens' keys and values into the KV
  // cache and Decoder::NumLogitRows(batch) rows of logits (host memory) into `logits`.
  virtual Status Forward(const ForwardBatch& batch, std::span<float> logits) = 0;

  // The same, also writing Decoder::NumHiddenRows(batch) rows of final hidden states (host
  // memory) into `hidden`, for pooling (embedding) requests. A backend that cannot refuses a
  // batch that asks for any.
  virtual Status ForwardPooling(const ForwardBatch& batch, std::span<float> logits,
                                std::span<float> hidden) {
    if (Decoder::NumHiddenRows(batch) > 0) {
      return UnimplementedError(
          "embeddings (pooling) run on the CPU backend only: use --device cpu");
    }
    (void)hidden;
    return Forward(batch, logits);
  }

  // Copies slots [0, num_slots) of block `src` to block `dst` of `group`, keys and values of
  // every layer of that group and every head: a forked sequence's own copy of a partly filled
  // block. kSliding only when the KV cache has a sliding-window group.
  virtual void CopyKvSlots(KvBlockGroup group, int32_t src, int32_t dst, int32_t num_slots) = 0;
};

}  // namespace kinfer::model
