// Activations as two 8-bit terms (internal to src/kernels): x ~ d1 * q1 + d2 * q2 per block, the
// second term quantizing what the first leaves, 254 times finer. The 8-bit matmul paths run the
// two terms as two "virtual tokens" (rows 2t and 2t + 1 of their activations) and add the two
// outputs, so a weight is unpacked once for both; the error of a dot product falls from
// (amax / 254) to (amax / 64516) an element, inside what transformers' own bf16 run deviates.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/pack.h"

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

// The frame of the scalar two-term matmuls (MatMulQ8Ref, MatMulQ8KRef): each token quantized
// into its two terms in blocks of `block` values, each row of w as stored (unpacked when w is
// packed), and y[t * rows + o] = dot(row, q1, d1) + dot(row, q2, d2), where dot(row, qx, dx)
// is one term's recurrence over the row's blocks.
template <class Dot>
void TwoTermRefRows(const TensorView& w, const float* x, int64_t n_tokens, int block, float* y,
                    Dot&& dot) {
  const int64_t out = w.rows(), K = w.cols(), nb = K / block;
  std::vector<uint8_t> unpacked(IsPacked(w.dtype) ? *RowBytes(StoredTypeOf(w.dtype), K) : 0);
  std::vector<int8_t> q1(static_cast<size_t>(K)), q2(static_cast<size_t>(K));
  std::vector<float> d1(static_cast<size_t>(nb)), d2(static_cast<size_t>(nb));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      QuantizeTwoTermRef(x + t * K + b * block, block, q1.data() + b * block, q2.data() + b * block,
                         &d1[static_cast<size_t>(b)], &d2[static_cast<size_t>(b)]);
    }
    for (int64_t o = 0; o < out; ++o) {
      const uint8_t* row = w.row(o);
      if (!unpacked.empty()) {
        UnpackRow(w, o, unpacked.data());
        row = unpacked.data();
      }
      y[t * out + o] = dot(row, q1, d1) + dot(row, q2, d2);
    }
  }
}

}  // namespace kinfer::kernels::internal
