// What the two AMX-INT8 kernels share (internal to src/kernels; x86-64 only): the activations
// laid out as the A tiles read them, once per MatMul for all its row ranges, and the final store
// that adds each token's two terms (internal/two_term.h) as MatMul adds them on the other paths.
// matmul_amx_int8.cc (K-quants, tiles of 64 columns) and matmul_amx_q8.cc (blocks of 32 columns)
// use them; the caller runs where AmxInt8KUsable().
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace kinfer::kernels::internal {

inline constexpr int64_t kAmxTileTokens = 16;  // tokens (rows) of an A tile

// Bytes of T tokens' activations as tiles of kp columns each (ToTiles).
inline size_t AmxTileBytes(int64_t T, int64_t kp) {
  return static_cast<size_t>((T + kAmxTileTokens - 1) / kAmxTileTokens * kAmxTileTokens * kp);
}

// The activations qx [T][K] as A tiles of `width` bytes a row (32 or 64: one tile product's K)
// at `at`, the columns padded with zeros to kp (a multiple of width): token tile i, columns
// [c * width, (c + 1) * width) at (i * kp / width + c) * 16 * width, 16 tokens x width bytes, the
// padding tokens zero. Rows K bytes apart would fall into few L1 and L2 sets.
__attribute__((target("avx512f,avx512bw"))) inline void ToTiles(const int8_t* qx, int64_t T,
                                                                int64_t K, int64_t width,
                                                                int64_t kp, int8_t* at) {
  const __mmask64 m = width == 64 ? ~__mmask64{0} : (__mmask64{1} << width) - 1;
  const int64_t tiles = (T + kAmxTileTokens - 1) / kAmxTileTokens, chunks = kp / width;
  for (int64_t i = 0; i < tiles; ++i) {
    for (int64_t r = 0; r < kAmxTileTokens; ++r) {
      const int64_t t = i * kAmxTileTokens + r;
      int8_t* dst = at + i * kAmxTileTokens * kp + r * width;
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512i v = t < T && c * width < K
                              ? _mm512_maskz_loadu_epi8(m, qx + t * K + c * width)
                              : _mm512_setzero_si512();
        _mm512_mask_storeu_epi8(dst + c * kAmxTileTokens * width, m, v);
      }
    }
  }
}

// Each token's output from its two terms' (virtual tokens t, t + 1) float sums in acc ([n][16],
// n even): y[t / 2 * O + r] = acc[t][r] + acc[t + 1][r] for the rows r in `mask`, the single add
// MatMul does for the paths that write both terms' outputs.
__attribute__((target("avx512f"))) inline void StoreTokenSums(const float* acc, int64_t n, float* y,
                                                              int64_t O, __mmask16 mask) {
  for (int64_t t = 0; t < n; t += 2) {
    const __m512 a = _mm512_loadu_ps(acc + t * 16), b = _mm512_loadu_ps(acc + (t + 1) * 16);
    _mm512_mask_storeu_ps(y + t / 2 * O, mask, _mm512_add_ps(a, b));
  }
}

}  // namespace kinfer::kernels::internal

#endif  // __x86_64__
