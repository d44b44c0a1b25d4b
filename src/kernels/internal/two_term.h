// Activations as two 8-bit terms (internal to src/kernels): x ~ d1 * q1 + d2 * q2 per block, the
// second term quantizing what the first leaves, 254 times finer. The 8-bit matmul paths run the
// two terms as two "virtual tokens" (rows 2t and 2t + 1 of their activations) and add the two
// outputs, so a weight is unpacked once for both; the error of a dot product falls from
// (amax / 254) to (amax / 64516) an element, inside what transformers' own bf16 run deviates.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace kinfer::kernels::internal {

// The scalar statement of one block of n values: q1, q2 and their scales, as the vector
// quantizers compute them (same operations, same rounding).
inline void QuantizeTwoTermRef(const float* x, int n, int8_t* q1, int8_t* q2, float* d1,
                               float* d2) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  *d1 = amax / 127.0f;
  *d2 = *d1 / 254.0f;
  const float id2 = *d2 > 0.0f ? 1.0f / *d2 : 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = std::nearbyint(x[i] * id);
    q1[i] = static_cast<int8_t>(a);
    const float r = std::fma(-a, *d1, x[i]);
    q2[i] = static_cast<int8_t>(std::clamp(std::nearbyint(r * id2), -127.0f, 127.0f));
  }
}

}  // namespace kinfer::kernels::internal
