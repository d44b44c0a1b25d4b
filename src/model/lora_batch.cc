#include "model/lora_batch.h"

#include <algorithm>

namespace kinfer::model {

void LoraBatch::Prepare(std::span<const SequenceInput> seqs) {
  adapters_.clear();
  for (auto& r : rows_) r.clear();
  int32_t t = 0;
  for (const SequenceInput& s : seqs) {
    if (s.lora) {
      auto it = std::find(adapters_.begin(), adapters_.end(), s.lora);
      const size_t i = static_cast<size_t>(it - adapters_.begin());
      if (it == adapters_.end()) adapters_.push_back(s.lora);
      if (rows_.size() <= i) rows_.resize(i + 1);
      for (int32_t k = 0; k < s.num_tokens; ++k) rows_[i].push_back(t + k);
    }
    t += s.num_tokens;
  }
}

void LoraBatch::Apply(int64_t layer, LoraTarget target, const float* x, int64_t in, float* y,
                      int64_t out, ThreadPool& pool) {
  groups_.clear();
  for (size_t i = 0; i < adapters_.size(); ++i) {
    const kernels::LoraMatrices& m = adapters_[i]->matrices(layer, target);
    if (!m.empty()) groups_.push_back({&m, rows_[i]});
  }
  if (groups_.empty()) return;
  const size_t need = static_cast<size_t>(kernels::LoraScratchSize(groups_));
  if (scratch_.size() < need) scratch_.resize(need);
  kernels::LoraAdd(groups_, x, in, y, out, scratch_.data(), pool);
}

}  // namespace kinfer::model
