// MatMul for BF16 and F16 weights on Intel AMX tiles (AMX-BF16), where the CPU has them and the
// kernel lets this process use them (core/cpu_features.h): activations rounded to bf16, f32
// accumulation in the tiles. F16 weights are split exactly into two bf16 parts, hi + lo, each
// multiplied in turn. One tile dot product (TDPBF16PS) does 16 x 16 x 32 multiply-adds; the
// f32 FMA path does 16 an instruction.
//
// Every (token, row) output is the tiles' accumulation over k in chunks of 32, in order (hi then
// lo per chunk for F16), whatever the number of tokens or how rows are split over threads: one
// token alone (decode) gives the same bits as a batch of 512, so results are bit-identical alone
// or batched. One token (decode) runs on AVX-512 instead (VectorRowsImpl), which reproduces the
// tiles' arithmetic bit for bit: the packed layout (pack.h) holds a k pair of 16 rows in each 64
// bytes, one row a lane, so it reads the weights where they are with no transpose, and for F16
// needs less work a byte than splitting tiles.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/internal/amx_tiles.h"
#include "kernels/internal/matmul_paths.h"
#include "kernels/pack.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports the deliberately undefined pass-through operand of the AVX-512 unpack
// intrinsics (_mm512_undefined_epi32) as used uninitialized once they are inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace kinfer::kernels::internal {

#if defined(__x86_64__)
namespace {

#define KINFER_AMX \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16,f16c,fma")))

constexpr int64_t kChunk = 32;  // k elements a tile row holds (32 bf16, 64 bytes)
constexpr int64_t kTile = 16;   // rows of a tile, and f32 columns of an accumulator tile
// How far ahead of the weights being read to prefetch: this VM's hardware prefetchers alone
// leave a one-thread stream at a fraction of the bandwidth (as matmul_f32.cc measured).
constexpr int64_t kPrefetchBytes = 16384;
// Where a tile's lines are prefetched, and how far ahead. The prefill tiles prefetch into L1
// from kPrefetchBytes ahead. Decode reads every weight once, in one stream a thread, and at two
// threads (Llama-3.2-1B, this VM) was limited by how many lines were in flight: prefetches into
// L1 from 16 KiB ahead stalled on the L1 fill buffers, while prefetches into L2 a few KiB ahead
// (about the same time ahead for both types: F16 takes longer a KiB) read 1.3-1.5x faster.
// Decode then prefetches each line a second time, into L1 kDecodeL1PrefetchBytes ahead, so that
// its loads hit L1 rather than wait on L2 (as the integer kernels do): Llama-3.2-1B decode
// (kinfer_bench -p 1 -n 32, 2 threads, 3 alternated runs) went from 10.1 to 12.8 t/s for BF16
// and from 9.0 to 11.1 for F16, with the L2 distances moved from 4 to 8 KiB (BF16) and from
// 2 to 3 KiB (F16) as well (16 KiB for BF16 measured alike; 4 and 8 KiB for F16 were slower).
struct Prefetch {
  int64_t ahead;
  bool l2;
};
constexpr Prefetch kPrefillPrefetch{kPrefetchBytes, false};
constexpr Prefetch kDecodePrefetchBf16{8192, true};
constexpr Prefetch kDecodePrefetchF16{3072, true};
constexpr int64_t kDecodeL1PrefetchBytes = 1024;

// 16 rows of 16 dwords (one 64-byte row chunk each) -> their transpose, in place. Inlined: out
// of line (as GCC leaves it), the rows go through memory, which the decode path cannot afford.
KINFER_AMX __attribute__((always_inline)) inline void Transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now r[i] holds, in its 128-bit lane L, columns 4L'.. of rows 4q..4q+3 for i = 4q + c: a 4x4
  // grid of 128-bit blocks to transpose.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

// Chunk c of row group g (rows 16g.., zero past the last) in the tile layout (pack.h): 16 k
// pairs of 64 bytes, dword j of pair i = row 16g + j's columns 32c + 2i and 2i + 1, which is how
// TDPBF16PS reads its second operand and how the vector path wants one row in each lane. A packed
// tile is read where it is, prefetching as `pf` says (the hardware prefetchers alone leave a
// stream at a fraction of the bandwidth); 16 stored rows are transposed into `staged`.
KINFER_AMX __attribute__((always_inline)) inline const uint8_t* TileBytes(const TensorView& w,
                                                                          bool packed, int64_t g,
                                                                          int64_t c, Prefetch pf,
                                                                          uint8_t* staged) {
  if (packed) {
    const uint8_t* src = PackedTile(w, g, c);
    for (int l = 0; l < 1024; l += 64) {
      if (pf.l2) {
        __builtin_prefetch(src + pf.ahead + l, 0, 2);
        __builtin_prefetch(src + kDecodeL1PrefetchBytes + l, 0, 3);
      } else {
        __builtin_prefetch(src + pf.ahead + l);
      }
    }
    return src;
  }
  const int64_t r0 = g * kTile, valid = std::min<int64_t>(w.rows() - r0, kTile);
  __m512i r[16];
  for (int i = 0; i < 16; ++i) {
    if (i >= valid) {
      r[i] = _mm512_setzero_si512();
      continue;
    }
    const uint8_t* src = w.row(r0 + i) + c * 64;
    if (c * 64 + kPrefetchBytes / 16 < w.cols() * 2) __builtin_prefetch(src + kPrefetchBytes / 16);
    r[i] = _mm512_loadu_si512(src);
  }
  Transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_store_si512(staged + 64 * i, r[i]);
  return staged;
}

// Chunk c of row group g as the tiles take it, into 64-byte aligned hi (BF16: the pairs as they
// are) and, for F16, lo: F16 split exactly into bf16 hi + lo in the same places, hi the top 16
// bits of the f32 value and lo the rest (at most 3 significant bits, so both conversions are
// exact).
KINFER_AMX void StageTile(const TensorView& w, bool packed, bool f16, int64_t g, int64_t c,
                          Prefetch pf, uint16_t* hi, uint16_t* lo) {
  alignas(64) uint8_t staged[1024];
  const uint8_t* src = TileBytes(w, packed, g, c, pf, staged);
  if (!f16) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) _mm512_store_si512(hi + 32 * i, _mm512_loadu_si512(src + 64 * i));
    return;
  }
  const __m512i mask = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int i = 0; i < 16; ++i, src += 64) {
    const __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
    const __m512 b =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32)));
    const __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), mask));
    const __m512 bh = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(b), mask));
    _mm512_store_si512(hi + 32 * i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(bh, ah)));
    _mm512_store_si512(lo + 32 * i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(
                                        _mm512_sub_ps(b, bh), _mm512_sub_ps(a, ah))));
  }
}

// Accumulator tile `reg` (0-3) to dst, `stride` bytes a row (the tile macros take literals).
KINFER_AMX void StoreTile(int reg, void* dst, int64_t stride) {
  switch (reg) {
    case 0:
      _tile_stored(0, dst, stride);
      return;
    case 1:
      _tile_stored(1, dst, stride);
      return;
    case 2:
      _tile_stored(2, dst, stride);
      return;
    default:
      _tile_stored(3, dst, stride);
  }
}

// Tile ops on registers chosen at run time (the intrinsics take literals).
KINFER_AMX void LoadTile(int reg, const void* src, int64_t stride) {
  switch (reg) {
    case 4:
      _tile_loadd(4, src, stride);
      return;
    case 5:
      _tile_loadd(5, src, stride);
      return;
    case 6:
      _tile_loadd(6, src, stride);
      return;
    default:
      _tile_loadd(7, src, stride);
  }
}

#define KINFER_DP(c, a, b)            \
  case (c)*4 + ((a)-4) * 2 + ((b)-6): \
    _tile_dpbf16ps(c, b, a);          \
    return;

// Accumulator c (0-3) += activations b (6-7) . weights a (4-5).
KINFER_AMX void Dot(int c, int a, int b) {
  switch (c * 4 + (a - 4) * 2 + (b - 6)) {
    KINFER_DP(0, 4, 6)
    KINFER_DP(0, 4, 7)
    KINFER_DP(0, 5, 6)
    KINFER_DP(0, 5, 7)
    KINFER_DP(1, 4, 6)
    KINFER_DP(1, 4, 7)
    KINFER_DP(1, 5, 6)
    KINFER_DP(1, 5, 7)
    KINFER_DP(2, 4, 6)
    KINFER_DP(2, 4, 7)
    KINFER_DP(2, 5, 6)
    KINFER_DP(2, 5, 7)
    KINFER_DP(3, 4, 6)
    KINFER_DP(3, 4, 7)
    KINFER_DP(3, 5, 6)
    KINFER_DP(3, 5, 7)
    default:
      return;
  }
}
#undef KINFER_DP

// Stores accumulator tile `reg` (tokens j of a block from t0, weight rows i from r0) into y, for
// the valid tokens (j < mt) and rows (i0 <= i < i1): the tile is [token][row], as y.
KINFER_AMX void StoreAcc(int reg, float* y, int64_t O, int64_t t0, int64_t r0, int64_t mt,
                         int64_t i0, int64_t i1) {
  alignas(64) float tmp[kTile * kTile];
  StoreTile(reg, tmp, 64);
  const __mmask16 mask = static_cast<__mmask16>(((1u << i1) - 1) & ~((1u << i0) - 1));
  for (int64_t j = 0; j < mt; ++j) {
    _mm512_mask_storeu_ps(y + (t0 + j) * O + r0, mask, _mm512_load_ps(tmp + kTile * j));
  }
}

// Tiles: 0-3 accumulators (row group g, token block b at 2g + b), 4-5 weights (row groups),
// 6-7 activations (token blocks). Each accumulator element is weight row . token over k, chunk
// by chunk in order (hi then lo per chunk for F16). k is taken kBlock columns at a time for all
// tokens, so that a block of weights (staged in bf16 for F16) stays in L1 while every token
// block passes; accumulators wait in memory between blocks (exact f32 stores and loads).
constexpr int64_t kBlock = 256;

// Accumulator `reg` from src, or zero when src is null.
KINFER_AMX void LoadAcc(int reg, const float* src) {
  if (src == nullptr) {
    switch (reg) {
      case 0:
        _tile_zero(0);
        return;
      case 1:
        _tile_zero(1);
        return;
      case 2:
        _tile_zero(2);
        return;
      default:
        _tile_zero(3);
        return;
    }
  }
  switch (reg) {
    case 0:
      _tile_loadd(0, src, 64);
      return;
    case 1:
      _tile_loadd(1, src, 64);
      return;
    case 2:
      _tile_loadd(2, src, 64);
      return;
    default:
      _tile_loadd(3, src, 64);
  }
}

// The tiles over a packed matrix (pack.h's tile layout, kBF16x16 / kF16x16: groups of 16 rows,
// each chunk of 32 columns one contiguous KiB in TDPBF16PS's second-operand form, so a decode
// step streams the matrix front to back) or a stored one (transposed into that form as it is
// staged). Weight tiles are staged in L1 (split into hi and lo for F16) before the tile loads.
KINFER_AMX void AmxTileRowsImpl(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                                int64_t row_begin, int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), chunks = K / kChunk;
  const bool f16 = StoredTypeOf(w.dtype) == DType::kF16, packed = IsPackedTile(w.dtype);
  const int64_t blocks = (T + kTile - 1) / kTile, pairs = (blocks + 1) / 2;
  const size_t tile = kTile * kChunk;
  constexpr int64_t kBlockChunks = kBlock / kChunk;
  alignas(64) static thread_local uint16_t split[4][kBlockChunks][2][kTile * kChunk];
  thread_local std::vector<float> acc;
  if (pairs > 1 && acc.size() < static_cast<size_t>(pairs * 4 * kTile * kTile)) {
    acc.resize(static_cast<size_t>(pairs * 4 * kTile * kTile));
  }
  LoadTileConfig(kFullTiles);
  const int64_t g_end = (row_end + kTile - 1) / kTile;
  if (blocks == 1) {
    // Up to 16 tokens (decode): four row groups at a time, one accumulator each, weight and
    // activation tiles double-buffered so that a load never waits for the dot product before.
    constexpr int64_t kDecodeChunks = 2;  // a stage: 4 groups x 2 chunks x hi, lo = 16 KiB
    // Stages are written one ahead of the tile loads that read them: a tile load of bytes
    // still in the store buffer waits for them, which cost more than the dot products.
    auto stage = [&](int64_t g, int64_t ng, int64_t c0, int64_t nc, int buf) KINFER_AMX {
      for (int64_t gi = 0; gi < ng; ++gi) {
        for (int64_t c = 0; c < nc; ++c) {
          uint16_t(&t)[2][kTile * kChunk] = split[gi][buf * kDecodeChunks + c];
          StageTile(w, packed, f16, g + gi, c0 + c, kDecodePrefetchBf16, t[0], t[1]);
        }
      }
    };
    for (int64_t g = row_begin / kTile; g < g_end; g += 4) {
      const int64_t ng = std::min<int64_t>(4, g_end - g);
      for (int reg = 0; reg < 4; ++reg) LoadAcc(reg, nullptr);  // zero
      int a = 4, buf = 0;
      stage(g, ng, 0, std::min(kDecodeChunks, chunks), 0);
      for (int64_t c0 = 0; c0 < chunks; c0 += kDecodeChunks) {
        const int64_t nc = std::min(kDecodeChunks, chunks - c0);
        if (c0 + nc < chunks) {
          stage(g, ng, c0 + nc, std::min(kDecodeChunks, chunks - c0 - nc), buf ^ 1);
        }
        for (int64_t c = 0; c < nc; ++c) {
          const int b = 6 + static_cast<int>((c0 + c) & 1);
          LoadTile(b, xb + (c0 + c) * tile, 64);
          for (int part = 0; part < (f16 ? 2 : 1); ++part) {
            for (int64_t gi = 0; gi < ng; ++gi) {
              LoadTile(a, split[gi][buf * kDecodeChunks + c][part], 64);
              Dot(static_cast<int>(gi), a, b);
              a ^= 1;  // 4 <-> 5
            }
          }
        }
        buf ^= 1;
      }
      for (int64_t gi = 0; gi < ng; ++gi) {
        const int64_t lo = std::max<int64_t>(row_begin - (g + gi) * kTile, 0);
        const int64_t hi = std::min<int64_t>(row_end - (g + gi) * kTile, kTile);
        StoreAcc(static_cast<int>(gi), y, O, 0, (g + gi) * kTile, T, lo, hi);
      }
    }
    _tile_release();
    return;
  }
  for (int64_t g = row_begin / kTile; g < g_end; g += 2) {
    const bool has1 = g + 1 < g_end;
    const int64_t i0 = std::max<int64_t>(row_begin - g * kTile, 0);
    const int64_t e0 = std::min<int64_t>(row_end - g * kTile, kTile);
    const int64_t e1 = has1 ? std::min<int64_t>(row_end - (g + 1) * kTile, kTile) : 0;
    for (int64_t k0 = 0; k0 < K; k0 += kBlock) {
      const int64_t nc = std::min(kBlock, K - k0) / kChunk, c0 = k0 / kChunk;
      // The block's tiles into L1 with plain vector loads, which stream from memory far better
      // than tile loads do (split into hi and lo for F16).
      for (int64_t gi = 0; gi < (has1 ? 2 : 1); ++gi) {
        for (int64_t c = 0; c < nc; ++c) {
          StageTile(w, packed, f16, g + gi, c0 + c, kPrefillPrefetch, split[gi][c][0],
                    split[gi][c][1]);
        }
      }
      auto weights = [&](int64_t gi, int64_t c, int part) -> const void* {
        return split[gi][c][part];
      };
      const bool first = k0 == 0, last = k0 + nc * kChunk == K;
      for (int64_t p = 0; p < pairs; ++p) {
        const int64_t b = 2 * p;
        const bool two = b + 1 < blocks;
        float* saved = pairs > 1 ? acc.data() + p * 4 * kTile * kTile : nullptr;
        if (first) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else if (saved != nullptr) {
          for (int reg = 0; reg < 4; ++reg) LoadAcc(reg, saved + reg * kTile * kTile);
        }
        const uint16_t* xa = xb + static_cast<size_t>(b * chunks + c0) * tile;
        const uint16_t* xc = xa + static_cast<size_t>(chunks) * tile;
        for (int64_t c = 0; c < nc; ++c) {
          _tile_loadd(6, xa + c * tile, 64);
          if (two) _tile_loadd(7, xc + c * tile, 64);
          for (int part = 0; part < (f16 ? 2 : 1); ++part) {
            _tile_loadd(4, weights(0, c, part), 64);
            _tile_dpbf16ps(0, 6, 4);
            if (two) _tile_dpbf16ps(1, 7, 4);
            if (has1) {
              _tile_loadd(5, weights(1, c, part), 64);
              _tile_dpbf16ps(2, 6, 5);
              if (two) _tile_dpbf16ps(3, 7, 5);
            }
          }
        }
        if (!last) {
          if (saved != nullptr) {
            for (int reg = 0; reg < 4; ++reg) StoreTile(reg, saved + reg * kTile * kTile, 64);
          }
          continue;
        }
        const int64_t r0 = g * kTile, m0 = std::min<int64_t>(kTile, T - b * kTile);
        StoreAcc(0, y, O, b * kTile, r0, m0, i0, e0);
        if (has1) StoreAcc(2, y, O, b * kTile, r0 + kTile, m0, 0, e1);
        if (two) {
          const int64_t m1 = std::min<int64_t>(kTile, T - (b + 1) * kTile);
          StoreAcc(1, y, O, (b + 1) * kTile, r0, m1, i0, e0);
          if (has1) StoreAcc(3, y, O, (b + 1) * kTile, r0 + kTile, m1, 0, e1);
        }
      }
    }
  }
  _tile_release();
}

// A few tokens (decode) on AVX-512 instead of the tiles, with the same bits as TDPBF16PS. Its
// arithmetic, measured on Sapphire Rapids against other orders of the sums on random tiles with
// overflow, underflow, subnormal inputs, cancelling pairs and zeros of both signs (15 million
// outputs, none off by a bit), is, for an output element and one 16-pair tile row: E = the even
// products summed in order from +0, O the same for the odd ones, each an f32 FMA of exact bf16
// products, then acc = acc + (E + O), all in RNE with DAZ and FTZ. It is neither a sequence of
// VDPBF16PS on the pairs (which adds the odd then the even product to acc) nor one rounding of
// the exact sum. Each lane below is one weight row, and MXCSR has FTZ and DAZ set while the
// kernel runs.
constexpr int64_t kPairs = kChunk / 2;  // k pairs a tile row holds

// Token t's bf16 activations from the tile layout (ToBf16Impl), pair p (elements 2p and 2p + 1)
// in the two forms the kernels below read: xf[t * K + 2p + e] the element as f32 bits (F16), and
// pe[t * K / 2 + p] = (even, 0), po[...] = (0, odd) as bf16 pairs (BF16).
KINFER_AMX void SplitActivations(const uint16_t* xb, int64_t T, int64_t K, uint32_t* xf,
                                 uint32_t* pe, uint32_t* po) {
  const int64_t half = K / 2, chunks = K / kChunk;
  for (int64_t t = 0; t < T; ++t) {
    // Token t's columns 32c.. are row t % 16 of tile (t / 16, c).
    const uint16_t* row = xb + (t / kTile) * chunks * kTile * kChunk + (t % kTile) * kChunk;
    for (int64_t p = 0; p < half; ++p) {
      uint32_t d;
      std::memcpy(&d, row + (p / kPairs) * kTile * kChunk + 2 * (p % kPairs), 4);
      xf[t * K + 2 * p] = d << 16;
      xf[t * K + 2 * p + 1] = d & 0xFFFF0000u;
      pe[t * half + p] = d & 0xFFFFu;
      po[t * half + p] = d & 0xFFFF0000u;
    }
  }
}

// Token t's activations, in the forms SplitActivations makes.
struct VectorActivations {
  const uint32_t* xf;  // K a token
  const uint32_t* pe;  // K / 2 a token
  const uint32_t* po;
  int64_t K;
};

// Rows [row_begin, row_end) for kT tokens, 16 rows (one tile's) at a time, one in each lane: a
// packed tile holds a k pair of its 16 rows in each 64 bytes (TileBytes).
//
// BF16: VDPBF16PS on the pairs as they are, x's pair with the other element zeroed, so that it
// adds the even (odd) product to E (O) in RNE with DAZ and FTZ, as the tile does; the zero
// product it adds as well leaves E as it was, E never being -0 (it starts at +0, and
// +0 + -0 = +0). (A weight of inf or NaN would give NaN where the tile gives inf: such a weight
// makes the output meaningless anyway.)
//
// F16: f32 FMAs under MXCSR's FTZ and DAZ on the values split into bf16 hi + lo as StageTile
// does (hi the top 16 bits, lo the exact rest), the hi products of a chunk added before the lo
// ones. Converted, 8 rows' pairs fill a vector as (even, odd) lanes, so that one FMA against x's
// pair broadcast runs 8 rows' E and O chains; a chunk's E and O are then gathered into one vector
// each to be added as the tile adds them.
template <int kT, bool kF16>
KINFER_AMX void VectorRowsImpl(const TensorView& w, const VectorActivations& x, float* y,
                               int64_t row_begin, int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), chunks = K / kChunk, half = K / 2;
  const bool packed = IsPackedTile(w.dtype);
  alignas(64) uint8_t staged[1024];  // a stored matrix's chunk, transposed
  const Prefetch pf = kF16 ? kDecodePrefetchF16 : kDecodePrefetchBf16;
  const __m512i mask = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  // Lane j of E (O) from lane 2j (2j + 1) of the rows 0-7 vector and the rows 8-15 one.
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t g = row_begin / kTile; g * kTile < row_end; ++g) {
    const int64_t r0 = g * kTile;
    const int64_t lo = std::max<int64_t>(row_begin - r0, 0);
    const int64_t hi = std::min<int64_t>(row_end - r0, kTile);
    __m512 acc[kT];
    for (int t = 0; t < kT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) {
      const uint8_t* src = TileBytes(w, packed, g, c, pf, staged);  // 64 bytes: pair i of 16 rows
      const int64_t p0 = c * kPairs;
      if constexpr (kF16) {
        // Rows 0-7 (a) and 8-15 (b), hi and lo parts: lanes (row, even/odd).
        __m512 ah[kT], bh[kT], al[kT], bl[kT];
        for (int t = 0; t < kT; ++t) ah[t] = bh[t] = al[t] = bl[t] = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < kPairs; ++i) {
          const uint8_t* pair = src + 64 * i;
          const __m512 a =
              _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair)));
          const __m512 b =
              _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + 32)));
          const __m512 a_hi = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), mask));
          const __m512 b_hi = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(b), mask));
          const __m512 a_lo = _mm512_sub_ps(a, a_hi);
          const __m512 b_lo = _mm512_sub_ps(b, b_hi);
          for (int t = 0; t < kT; ++t) {
            uint64_t pair;
            std::memcpy(&pair, x.xf + t * x.K + 2 * (p0 + i), 8);
            const __m512 xv = _mm512_castsi512_ps(_mm512_set1_epi64(static_cast<int64_t>(pair)));
            ah[t] = _mm512_fmadd_ps(a_hi, xv, ah[t]);
            bh[t] = _mm512_fmadd_ps(b_hi, xv, bh[t]);
            al[t] = _mm512_fmadd_ps(a_lo, xv, al[t]);
            bl[t] = _mm512_fmadd_ps(b_lo, xv, bl[t]);
          }
        }
        for (int t = 0; t < kT; ++t) {
          const __m512 e = _mm512_permutex2var_ps(ah[t], even, bh[t]);
          const __m512 o = _mm512_permutex2var_ps(ah[t], odd, bh[t]);
          acc[t] = _mm512_add_ps(acc[t], _mm512_add_ps(e, o));
          const __m512 el = _mm512_permutex2var_ps(al[t], even, bl[t]);
          const __m512 ol = _mm512_permutex2var_ps(al[t], odd, bl[t]);
          acc[t] = _mm512_add_ps(acc[t], _mm512_add_ps(el, ol));
        }
      } else {
        __m512 e[kT], o[kT];
        for (int t = 0; t < kT; ++t) e[t] = o[t] = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < kPairs; ++i) {
          const __m512bh wp = reinterpret_cast<__m512bh>(_mm512_loadu_si512(src + 64 * i));
          for (int t = 0; t < kT; ++t) {
            const __m512i pe = _mm512_set1_epi32(static_cast<int>(x.pe[t * half + p0 + i]));
            const __m512i po = _mm512_set1_epi32(static_cast<int>(x.po[t * half + p0 + i]));
            e[t] = _mm512_dpbf16_ps(e[t], wp, reinterpret_cast<__m512bh>(pe));
            o[t] = _mm512_dpbf16_ps(o[t], wp, reinterpret_cast<__m512bh>(po));
          }
        }
        for (int t = 0; t < kT; ++t) acc[t] = _mm512_add_ps(acc[t], _mm512_add_ps(e[t], o[t]));
      }
    }
    const __mmask16 m = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
    for (int t = 0; t < kT; ++t) _mm512_mask_storeu_ps(y + t * O + r0, m, acc[t]);
  }
}

template <int kT>
KINFER_AMX void VectorRows(const TensorView& w, const VectorActivations& x, float* y,
                           int64_t row_begin, int64_t row_end) {
  if (StoredTypeOf(w.dtype) == DType::kF16) {
    VectorRowsImpl<kT, true>(w, x, y, row_begin, row_end);
  } else {
    VectorRowsImpl<kT, false>(w, x, y, row_begin, row_end);
  }
}

KINFER_AMX void AmxVectorRowsImpl(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                                  int64_t row_begin, int64_t row_end) {
  const int64_t K = w.cols(), half = K / 2;
  thread_local std::vector<uint32_t> xs;
  if (xs.size() < static_cast<size_t>(2 * T * K)) xs.resize(static_cast<size_t>(2 * T * K));
  uint32_t* xf = xs.data();
  uint32_t* pe = xf + T * K;
  uint32_t* po = pe + T * half;
  SplitActivations(xb, T, K, xf, pe, po);
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ, as the tiles
  for (int64_t t = 0; t < T;) {
    // The tokens in groups the templates unroll: up to 4 at a time.
    const int64_t nt = std::min<int64_t>(T - t, 4);
    const VectorActivations x{xf + t * K, pe + t * half, po + t * half, K};
    float* yt = y + t * w.rows();
    switch (nt) {
      case 1:
        VectorRows<1>(w, x, yt, row_begin, row_end);
        break;
      case 2:
        VectorRows<2>(w, x, yt, row_begin, row_end);
        break;
      case 3:
        VectorRows<3>(w, x, yt, row_begin, row_end);
        break;
      default:
        VectorRows<4>(w, x, yt, row_begin, row_end);
    }
    t += nt;
  }
  _mm_setcsr(csr);
}

// Activations in bf16 as the first operand of TDPBF16PS: for token block b (16 tokens, the
// padding ones zero) and chunk c, 1 KiB at (b * chunks + c) * 512 with row j = token 16b + j's
// columns 32c...
KINFER_AMX void ToBf16Impl(const float* x, int64_t T, int64_t K, uint16_t* xb) {
  const int64_t chunks = K / kChunk, blocks = (T + kTile - 1) / kTile;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t c = 0; c < chunks; ++c) {
      uint16_t* out = xb + static_cast<size_t>(b * chunks + c) * kTile * kChunk;
      for (int64_t j = 0; j < kTile; ++j) {
        const int64_t t = b * kTile + j;
        __m512i r = _mm512_setzero_si512();
        if (t < T) {
          const float* in = x + t * K + c * kChunk;
          r = reinterpret_cast<__m512i>(
              _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + 16), _mm512_loadu_ps(in)));
        }
        _mm512_storeu_si512(out + kChunk * j, r);
      }
    }
  }
}

bool AmxBf16Usable() {
  static const bool usable = [] {
    const CpuFeatures& f = GetCpuFeatures();
    return f.amx_bf16 && f.avx512_bf16 && f.avx512bw && f.avx512vl && f.f16c && f.fma &&
           RequestAmx().usable;
  }();
  return usable;
}

}  // namespace

bool UsesAmxBf16(DType t, int64_t cols) {
  const DType s = StoredTypeOf(t);
  return (s == DType::kBF16 || s == DType::kF16) && cols % kChunk == 0 && AmxBf16Usable();
}

size_t AmxActivationElements(int64_t T, int64_t K) {
  return static_cast<size_t>((T + kTile - 1) / kTile * kTile) * static_cast<size_t>(K);
}

void ToBf16Activations(const float* x, int64_t T, int64_t K, uint16_t* xb) {
  ToBf16Impl(x, T, K, xb);
}

void AmxBf16TileRows(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                     int64_t row_begin, int64_t row_end) {
  AmxTileRowsImpl(w, xb, T, y, row_begin, row_end);
}

void AmxBf16VectorRows(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                       int64_t row_begin, int64_t row_end) {
  AmxVectorRowsImpl(w, xb, T, y, row_begin, row_end);
}

void AmxBf16Rows(const TensorView& w, const uint16_t* xb, int64_t T, float* y, int64_t row_begin,
                 int64_t row_end) {
  if (T <= kAmxVectorMaxTokens) {
    return AmxVectorRowsImpl(w, xb, T, y, row_begin, row_end);
  }
  AmxBf16TileRows(w, xb, T, y, row_begin, row_end);
}

#else
bool UsesAmxBf16(DType, int64_t) { return false; }
size_t AmxActivationElements(int64_t, int64_t) { return 0; }
void ToBf16Activations(const float*, int64_t, int64_t, uint16_t*) {}
void AmxBf16Rows(const TensorView&, const uint16_t*, int64_t, float*, int64_t, int64_t) {}
void AmxBf16TileRows(const TensorView&, const uint16_t*, int64_t, float*, int64_t, int64_t) {}
void AmxBf16VectorRows(const TensorView&, const uint16_t*, int64_t, float*, int64_t, int64_t) {}
#endif

}  // namespace kinfer::kernels::internal
