// The adapters of one forward batch: which tokens use which LoRA adapter, and the low-rank
// products the decoder adds beside each adapted projection, with the rows grouped by adapter so
// that each adapter's matrices are read once per step whatever the number of its rows.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/lora.h"
#include "model/decoder.h"
#include "model/lora_adapter.h"

namespace kinfer::model {

class LoraBatch {
 public:
  // Groups the tokens of `seqs` (laid out sequence after sequence) by adapter. Allocates only
  // while the batch grows past what it has seen.
  void Prepare(std::span<const SequenceInput> seqs);
  // Whether any token of the prepared batch uses an adapter.
  bool active() const { return !adapters_.empty(); }

  // y[t * out + o] += the adapter's scale * B A x[t] for projection `target` of `layer`, for each
  // token t whose adapter changes that projection.
  void Apply(int64_t layer, LoraTarget target, const float* x, int64_t in, float* y, int64_t out,
             ThreadPool& pool);

 private:
  std::vector<const LoraAdapter*> adapters_;  // distinct adapters of the batch
  std::vector<std::vector<int32_t>> rows_;    // rows_[i]: the tokens of adapters_[i]
  std::vector<kernels::LoraGroup> groups_;
  std::vector<float> scratch_;
};

}  // namespace kinfer::model
