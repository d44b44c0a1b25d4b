// Vector helpers of the sampler over one row of logits.
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// The lowest i with x[i] the largest of x[0..n) (NaNs are never the largest; 0 when nothing
// but NaN and -inf): greedy sampling over a vocabulary of logits.
int64_t ArgMax(const float* x, int64_t n);

}  // namespace kinfer::kernels
