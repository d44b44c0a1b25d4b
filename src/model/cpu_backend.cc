#include "model/cpu_backend.h"

#include <cstring>

namespace kinfer::model {

CpuBackend::CpuBackend(const Model& model, ThreadPool& pool) : model_(model), pool_(pool) {}

std::string CpuBackend::Describe() const { return "cpu"; }

Status CpuBackend::AllocateKvCache(const KvStoreConfig& config, int64_t max_positions) {
  if (kv_) return FailedPreconditionError("the KV cache is already allocated");
  KINFER_ASSIGN_OR_RETURN(kv_, KvStore::Create(config));
  decoder_ = std::make_unique<Decoder>(model_, pool_, max_positions);
  return Status::Ok();
}

Status CpuBackend::Forward(const ForwardBatch& batch, std::span<float> logits) {
  if (!kv_) return FailedPreconditionError("Forward before AllocateKvCache");
  return decoder_->Forward(batch, *kv_, logits);
}

Status CpuBackend::ForwardPooling(const ForwardBatch& batch, std::span<float> logits,
                                  std::span<float> hidden) {
  if (!kv_) return FailedPreconditionError("Forward before AllocateKvCache");
  return decoder_->Forward(batch, *kv_, logits, hidden);
}

void CpuBackend::CopyKvSlots(KvBlockGroup group, int32_t src, int32_t dst, int32_t num_slots) {
  const KvStoreConfig& kc = kv_->config();
  const size_t elem = kc.dtype == DType::kF32 ? 4 : 2;
  const size_t row = static_cast<size_t>(kc.head_dim) * elem;
  for (int64_t l = 0; l < kc.num_layers; ++l) {
    if (kc.GroupOf(l) != group) continue;
    for (int64_t h = 0; h < kc.num_kv_heads; ++h) {
      const size_t off = static_cast<size_t>(h * kc.block_size) * row;
      const size_t n = row * static_cast<size_t>(num_slots);
      std::memcpy(static_cast<uint8_t*>(kv_->keys(l, dst)) + off,
                  static_cast<const uint8_t*>(kv_->keys(l, src)) + off, n);
      std::memcpy(static_cast<uint8_t*>(kv_->values(l, dst)) + off,
                  static_cast<const uint8_t*>(kv_->values(l, src)) + off, n);
    }
  }
}

}  // namespace kinfer::model
