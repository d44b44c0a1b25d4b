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
  Status AllocateKvCache(const KvStoreConfig& config, int64_t max_positions) override;
  Status Forward(const ForwardBatch& batch, std::span<float> logits) override;
  Status ForwardPooling(const ForwardBatch& batch, std::span<float> logits,
                        std::span<float> hidden) override;
  void CopyKvSlots(int32_t src, int32_t dst, int32_t num_slots) override;

  KvStore* kv_store() { return kv_.get(); }

 private:
  Decoder decoder_;
  std::unique_ptr<KvStore> kv_;
};

}  // namespace kinfer::model
