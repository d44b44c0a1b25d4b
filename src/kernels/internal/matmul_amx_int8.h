// The 8-bit-activation paths of matmul_paths.h on AMX-INT8 tiles (internal to src/kernels), each
// bit-identical to the VNNI kernel it stands in for: MatMulMany (matmul.cc) hands K-quant
// matmuls of T >= kAmxInt8KMinTokens virtual tokens to AmxInt8KTokenRows (matmul_amx_int8.cc)
// instead of Q8KActivationRows where UseAmxInt8K, and the Q8_0/Q4_0/Q5_0/Q5_1 path
// (Q8ActivationRows; matmul_amx_q8.cc) calls of T >= kAmxInt8Q8MinTokens to AmxInt8Q8Rows where
// UseAmxInt8Q8 (unless a test changed the thresholds).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace kinfer::kernels::internal {

constexpr int64_t kAmxInt8KMinTokens = 16;

// Whether this CPU has AMX-INT8 (and the AVX-512 the epilogue needs) and the kernel granted the
// tiles (RequestAmx()); decided once.
bool AmxInt8KUsable();

// Whether a rows call of T virtual tokens takes the tiles.
bool UseAmxInt8K(int64_t T);

// Q4_K, Q5_K and Q6_K weights (stored or packed) against the 2 n_tokens virtual tokens that are
// the two terms of n_tokens tokens (two_term.h), where UseAmxInt8K(2 n_tokens), in two steps:
// AmxInt8KTiles lays their activations qx out as the tiles read them, into
// AmxInt8KTileBytes(n_tokens, K) bytes at `at`, once for all the row ranges of a MatMul;
// AmxInt8KTokenRows then writes y [n_tokens][O], each token's two outputs added as MatMul adds
// them (the same bits) as the tiles store them: half the stores, and no pass over
// [2 n_tokens][O] outputs.
size_t AmxInt8KTileBytes(int64_t n_tokens, int64_t K);
void AmxInt8KTiles(const int8_t* qx, int64_t n_tokens, int64_t K, int8_t* at);
void AmxInt8KTokenRows(const TensorView& w, const int8_t* at, const float* dx, const int32_t* sums,
                       int64_t n_tokens, float* y, int64_t row_begin, int64_t row_end);

// Sets the fewest virtual tokens that take the tiles (1: every call; INT64_MAX: none), so that a
// test or benchmark runs both kernels on the same input; returns the previous value.
int64_t SetAmxInt8KMinTokensForTest(int64_t n);

// Q8RowsFn of matmul_paths.h for Q8_0, Q4_0, Q5_0 and Q5_1 weights, stored or packed; the caller
// runs on a target with AVX-512 VBMI (Q5's fifth bits are unpacked with vpmultishiftqb).
constexpr int64_t kAmxInt8Q8MinTokens = 16;
bool UseAmxInt8Q8(int64_t T);
void AmxInt8Q8Rows(const TensorView& w, const int8_t* qx, const float* dx, const int32_t* sx,
                   int64_t T, float* y, int64_t row_begin, int64_t row_end);
int64_t SetAmxInt8Q8MinTokensForTest(int64_t n);

}  // namespace kinfer::kernels::internal
