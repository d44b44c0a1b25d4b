// The paths MatMul (matmul.cc) splits its rows over, each for the best SIMD target of this CPU
// (internal to src/kernels). A path computes output rows [row_begin, row_end) of y = W x for all
// T tokens (y is [T, W.rows()]), every output as matmul.h promises.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels::internal {

// f32 activations, any weight type (matmul_f32.cc).
using F32RowsFn = void (*)(const TensorView& w, const float* x, int64_t T, float* y,
                           int64_t row_begin, int64_t row_end);
F32RowsFn F32ActivationRows();

// 8-bit activations (matmul_q8.cc), for weights where MatMulUsesQ8Activations: x quantized by
// QuantizeQ8 into qx [T][K], per-block scales dx and per-block sums sx [T][K / 32].
void QuantizeQ8(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sx);
using Q8RowsFn = void (*)(const TensorView& w, const int8_t* qx, const float* dx, const int32_t* sx,
                          int64_t T, float* y, int64_t row_begin, int64_t row_end);
Q8RowsFn Q8ActivationRows();

}  // namespace kinfer::kernels::internal
