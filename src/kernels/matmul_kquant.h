// MatMul's 8-bit-activation path for Q4_K, Q5_K and Q6_K weights (matmul.h says when it runs),
// stated as plain scalar code: the reference its VNNI kernels are tested against bit for bit.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels {

// Scalar reference of the K-quant 8-bit-activation MatMul (Q4_K, Q5_K, Q6_K weights, stored or
// packed): what MatMul computes when MatMulUsesQ8Activations, bit for bit. Each token's
// activations are quantized per block of 256 (scale dx = amax / 127, q = round-to-even(x / dx),
// as llama.cpp's Q8_K); then for each output, over super-blocks b in order from acc = 0,
//   Q4_K, Q5_K: isum = sum_j sc_j * U_j, msum = sum_j m_j * X_j (sub-blocks j of 32: scale
//               sc_j, min m_j, U_j the integer dot of the unsigned quants with q, X_j sum of q);
//               acc = fma(float(isum), d * dx, acc); acc = fma(float(msum), -(dmin * dx), acc);
//   Q6_K:       isum = sum_g sc_g * (U_g - 32 * X_g) over groups of 16 (quants + 32 unsigned);
//               acc = fma(float(isum), d * dx, acc).
// Integer sums are exact, so any order of computing them gives the same acc.
void MatMulQ8KRef(const TensorView& w, const float* x, int64_t n_tokens, float* y);

}  // namespace kinfer::kernels
