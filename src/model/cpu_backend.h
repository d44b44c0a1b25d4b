// The CPU backend: the Decoder over a KvStore in host memory.
#pragma once

#include <memory>

#include "core/thread_pool.h"
#include "model/backend.h"

namespace kinfer::model {

class CpuBackend : public Backend {
 public:
  // `model` and `pool` must outlive the backend.
  CpuBackend(const Model& model, ThreadPool& pool);

  std::string Describe() const override;
  Result<int64_t> Reserve(int64_t max_tokens) override { return int64_t{0}; }
  // Both block groups of `config` (a sliding-window group when it has one); `max_positions` is
  // the decoder's context length (Decoder's constructor: it picks LongRoPE's factors).
  Status AllocateKvCache(const KvStoreConfig& config, int64_t max_positions) override;
  Status Forward(const ForwardBatch& batch, std::span<float> logits) override;
  Status ForwardPooling(const ForwardBatch& batch, std::span<float> logits,
                        std::span<float> hidden) override;
  void CopyKvSlots(KvBlockGroup group, int32_t src, int32_t dst, int32_t num_slots) override;

  KvStore* kv_store() { return kv_.get(); }

 private:
  const Model& model_;
  ThreadPool& pool_;
  std::unique_ptr<Decoder> decoder_;  // made with the KV cache
  std::unique_ptr<KvStore> kv_;
};

}  // namespace kinfer::model
