// Paged attention with soft-capped scores (Gemma 2): softmax(cap * tanh(scale * q.K / cap)) . V.
// Same paged layout and batch-invariance promise as AttendHeads (ops.h): a head's output depends
// only on q, the cached values, lo and hi.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace kinfer::kernels {

// AttendHeads with scores soft-capped at `cap` (> 0) before the softmax. `scores` needs
// heads * (hi + 1) floats, `row` head_dim floats of scratch.
void AttendHeadsSoftCap(const float* q, int64_t heads, int64_t head_dim, const PagedKvView& kv,
                        int64_t lo, int64_t hi, float scale, float cap, float* scores, float* row,
                        float* out);

}  // namespace kinfer::kernels
