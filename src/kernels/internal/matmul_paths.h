// The paths MatMul (matmul.cc) splits its rows over, each for the best SIMD target of this CPU
// (internal to src/kernels). A path computes output rows [row_begin, row_end) of y = W x for all
// T tokens (y is [T, W.rows()]), every output as matmul.h promises.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels::internal {

// f32 activations, any weight type (matmul_f32.cc).
using F32RowsFn = void (*)(const TensorView& w, const float* x, int64_t T, float* y,
                           int64_t row_begin, int64_t row_end);
F32RowsFn F32ActivationRows();

// 8-bit activations in blocks of 32 (matmul_q8.cc), for Q8_0/Q4_0 weights where
// UsesQ8Activations: T tokens quantized by QuantizeQ8 into 2T virtual tokens, the two terms of
// internal/two_term.h (qx [2T][K], per-block scales dx and sums sx [2T][K / 32]); the rows
// function takes the 2T virtual tokens and MatMul adds each token's two outputs.
void QuantizeQ8(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sx);
using Q8RowsFn = void (*)(const TensorView& w, const int8_t* qx, const float* dx, const int32_t* sx,
                          int64_t T, float* y, int64_t row_begin, int64_t row_end);
Q8RowsFn Q8ActivationRows();
bool UsesQ8Activations(DType t, int64_t cols);

// 8-bit activations in blocks of 256 (matmul_kquant.cc), for K-quant weights where
// UsesQ8KActivations, two terms as above: qx [2T][K], dx [2T][K / 256],
// sums [2T][K / 256][kQ8KSums] (the int16 pairs
// of 32-element sums, then 32 times each 16-element sum).
constexpr int64_t kQ8KSums = 20;
void QuantizeQ8K(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sums);
Q8RowsFn Q8KActivationRows();
bool UsesQ8KActivations(DType t, int64_t cols);

// bf16 activations on AMX tiles (matmul_amx.cc), for BF16 and F16 weights where UsesAmxBf16:
// x rounded to bf16 by ToBf16Activations into xb, AmxActivationElements(T, K) elements: tiles of
// 16 tokens (the padding ones zero) by 32 columns, laid out as the tile dot product reads them.
bool UsesAmxBf16(DType t, int64_t cols);
size_t AmxActivationElements(int64_t T, int64_t K);
void ToBf16Activations(const float* x, int64_t T, int64_t K, uint16_t* xb);
// Up to kAmxVectorMaxTokens tokens (decode) run on AVX-512, reading the packed weights where
// they are (the tiles would do one useful row in 16 after staging each tile in L1, and for F16
// splitting tiles into bf16 costs more than the vector path's whole dot product), the rest on
// the tiles: both give the same bits for every token, so a token's outputs do not depend on T
// (matmul_amx_test.cc holds the two paths to each other bit for bit).
void AmxBf16Rows(const TensorView& w, const uint16_t* xb, int64_t T, float* y, int64_t row_begin,
                 int64_t row_end);
constexpr int64_t kAmxVectorMaxTokens = 1;
// The two paths by themselves, for the tests that hold them to each other: the tiles, and
// AVX-512 for BF16 or F16 weights and T <= 16.
void AmxBf16TileRows(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                     int64_t row_begin, int64_t row_end);
void AmxBf16VectorRows(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                       int64_t row_begin, int64_t row_end);

}  // namespace kinfer::kernels::internal
