// The K-quant 8-bit-activation path of matmul_paths.h (Q8KActivationRows) on AMX-INT8 tiles
// (matmul_amx_int8.cc; internal to src/kernels), bit-identical to the VNNI kernel: the VNNI
// rows function hands calls of T >= kAmxInt8KMinTokens virtual tokens (unless a test changed
// the threshold) to AmxInt8KRows where UseAmxInt8K.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels::internal {

constexpr int64_t kAmxInt8KMinTokens = 16;

// Whether this CPU has AMX-INT8 (and the AVX-512 the epilogue needs) and the kernel granted the
// tiles (RequestAmx()); decided once.
bool AmxInt8KUsable();

// Whether a rows call of T virtual tokens takes the tiles.
bool UseAmxInt8K(int64_t T);

// Q8RowsFn of matmul_paths.h for Q4_K, Q5_K and Q6_K weights, stored or packed.
void AmxInt8KRows(const TensorView& w, const int8_t* qx, const float* dx, const int32_t* sums,
                  int64_t T, float* y, int64_t row_begin, int64_t row_end);

// Sets the fewest virtual tokens that take the tiles (1: every call; INT64_MAX: none), so that a
// test or benchmark runs both kernels on the same input; returns the previous value.
int64_t SetAmxInt8KMinTokensForTest(int64_t n);

}  // namespace kinfer::kernels::internal
