// The 8-bit-activation paths of matmul_paths.h on AMX-INT8 tiles (internal to src/kernels), each
// bit-identical to the VNNI kernel it stands in for: MatMulMany (matmul.cc) hands matmuls of
// T >= kAmxInt8KMinTokens (K-quants; matmul_amx_int8.cc) or kAmxInt8Q8MinTokens (Q8_0, Q4_0,
// Q5_0, Q5_1; matmul_amx_q8.cc) virtual tokens to AmxInt8KTokenRows or AmxInt8Q8TokenRows
// instead of Q8KActivationRows or Q8ActivationRows where UseAmxInt8K or UseAmxInt8Q8 (unless a
// test changed the thresholds).
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

// Q8_0, Q4_0, Q5_0 and Q5_1 weights (stored or packed) the same way: AmxInt8Q8Tiles lays the
// activations out (AmxInt8Q8TileBytes(n_tokens, K) bytes), AmxInt8Q8TokenRows writes y
// [n_tokens][O]. The caller runs where the 8-bit path of matmul_q8.cc does (Highway's AVX3_DL
// target, whose AVX-512 VBMI unpacks Q5's fifth bits with vpmultishiftqb).
constexpr int64_t kAmxInt8Q8MinTokens = 16;
bool UseAmxInt8Q8(int64_t T);
size_t AmxInt8Q8TileBytes(int64_t n_tokens, int64_t K);
void AmxInt8Q8Tiles(const int8_t* qx, int64_t n_tokens, int64_t K, int8_t* at);
void AmxInt8Q8TokenRows(const TensorView& w, const int8_t* at, const float* dx, const int32_t* sx,
                        int64_t n_tokens, float* y, int64_t row_begin, int64_t row_end);
int64_t SetAmxInt8Q8MinTokensForTest(int64_t n);

}  // namespace kinfer::kernels::internal
