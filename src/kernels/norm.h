// Normalization layers of the decoder.
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// out = x / sqrt(mean(x^2) + eps) * weight; out may alias x.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);

}  // namespace kinfer::kernels
