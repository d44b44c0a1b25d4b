// MatMul's 8-bit-activation path for Q8_0 and Q4_0 weights (matmul.h says when it runs), stated
// as plain scalar code: the reference its VNNI kernels are tested against bit for bit.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels {

// Scalar reference of the 8-bit-activation MatMul (Q8_0 and Q4_0 weights, stored or packed):
// what MatMul computes when MatMulUsesQ8Activations, bit for bit.
void MatMulQ8Ref(const TensorView& w, const float* x, int64_t n_tokens, float* y);

}  // namespace kinfer::kernels
