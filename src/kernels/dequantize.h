// Rows of weights in any compute type (quant.h's block formats, F16, BF16, packed layouts) to
// f32, with exactly the values of the scalar DequantizeRowRef.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels {

// dst[0..n) = the n values stored at src in type t (any compute type).
void DequantizeRow(DType t, const void* src, float* dst, int64_t n);

// dst[0..cols) = row r of matrix w, whatever its layout (packed ones included, pack.h).
void DequantizeMatrixRow(const TensorView& w, int64_t r, float* dst);

}  // namespace kinfer::kernels
