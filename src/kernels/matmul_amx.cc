// MatMul for BF16 and F16 weights on Intel AMX tiles (AMX-BF16), where the CPU has them and the
// kernel lets this process use them (core/cpu_features.h): activations rounded to bf16, f32
// accumulation in the tiles. F16 weights are split exactly into two bf16 parts, hi + lo, each
// multiplied in turn. One tile dot product (TDPBF16PS) does 16 x 16 x 32 multiply-adds; the
// f32 FMA path does 16 an instruction.
//
// Every (token, row) output is the tiles' accumulation over k in chunks of 32, in order (hi then
// lo per chunk for F16), whatever the number of tokens or how rows are split over threads: one
// token alone (decode) runs the same tile instructions as a batch of 512, so results are
// bit-identical alone or batched.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/internal/matmul_paths.h"

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

// Tile registers: 0-3 accumulators (token block a, row group b at 2a + b), 4-5 activations
// (token blocks), 6 weights.
KINFER_AMX void ConfigureTiles() {
  alignas(64) unsigned char cfg[64] = {};
  cfg[0] = 1;
  for (int t = 0; t < 7; ++t) {
    cfg[16 + 2 * t] = 64;  // bytes a row
    cfg[48 + t] = kTile;   // rows
  }
  // GCC 12 does not see that ldtilecfg reads `cfg` and drops the stores above without this.
  __asm__ volatile("" : : "r"(cfg) : "memory");
  _tile_loadconfig(cfg);
}

// 16 rows of 16 dwords (one 64-byte row chunk each) -> their transpose, in place.
KINFER_AMX void Transpose16(__m512i (&r)[16]) {
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

// The weight tiles of rows [r0, r0 + n) (n <= 16, the rest zero), chunk c: tile element
// [i][j][p] = W[r0 + j][32c + 2i + p] in bf16, the layout TDPBF16PS reads its second operand in.
// F16 rows give two tiles, hi and lo, with hi + lo exactly the f16 value.
KINFER_AMX void WeightTiles(const TensorView& w, int64_t r0, int64_t n, int64_t c, bool f16,
                            uint16_t* hi, uint16_t* lo) {
  __m512i h[16], l[16];
  for (int64_t j = 0; j < kTile; ++j) {
    if (j >= n) {
      h[j] = l[j] = _mm512_setzero_si512();
      continue;
    }
    const uint8_t* p = w.row(r0 + j) + c * kChunk * 2;
    if (!f16) {
      h[j] = _mm512_loadu_si512(p);
      continue;
    }
    const __m256i raw_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i raw_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const __m512 a = _mm512_cvtph_ps(raw_lo), b = _mm512_cvtph_ps(raw_hi);
    const __m512i mask = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
    const __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), mask));
    const __m512 bh = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(b), mask));
    // hi keeps the top 16 bits (exactly a bf16); lo = value - hi has at most 3 significant bits,
    // so both conversions below are exact.
    h[j] = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(bh, ah));
    l[j] =
        reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(_mm512_sub_ps(b, bh), _mm512_sub_ps(a, ah)));
  }
  Transpose16(h);
  for (int i = 0; i < 16; ++i) _mm512_storeu_si512(hi + 32 * i, h[i]);
  if (f16) {
    Transpose16(l);
    for (int i = 0; i < 16; ++i) _mm512_storeu_si512(lo + 32 * i, l[i]);
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

// Stores accumulator tile `reg` (tokens m of a block of 16 from t0, rows j from r0) into y, only
// the valid tokens (m < mt) and rows (j < nr).
KINFER_AMX void StoreAcc(int reg, float* y, int64_t O, int64_t t0, int64_t r0, int64_t mt,
                         int64_t nr) {
  if (mt == kTile && nr == kTile) return StoreTile(reg, y + t0 * O + r0, O * 4);
  alignas(64) float tmp[kTile * kTile];
  StoreTile(reg, tmp, 64);
  for (int64_t m = 0; m < mt; ++m) {
    std::memcpy(y + (t0 + m) * O + r0, tmp + m * kTile, static_cast<size_t>(nr) * 4);
  }
}

KINFER_AMX void AmxRowsImpl(const TensorView& w, const uint16_t* xb, int64_t T, float* y,
                            int64_t row_begin, int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), chunks = K / kChunk;
  const bool f16 = w.dtype == DType::kF16;
  const int64_t blocks = (T + kTile - 1) / kTile;
  const size_t xstride = static_cast<size_t>(K) * 2;
  // The weight tiles of two row groups, every chunk: [group][chunk][hi, lo][16 x 32].
  thread_local std::vector<uint16_t> panel;
  const size_t tile = kTile * kChunk;
  if (panel.size() < 2 * static_cast<size_t>(chunks) * 2 * tile) {
    panel.resize(2 * static_cast<size_t>(chunks) * 2 * tile);
  }
  auto tile_at = [&](int64_t g, int64_t c, int part) {
    return panel.data() + ((static_cast<size_t>(g * chunks + c) * 2) + part) * tile;
  };
  ConfigureTiles();
  for (int64_t r0 = row_begin; r0 < row_end; r0 += 2 * kTile) {
    const int64_t n0 = std::min<int64_t>(kTile, row_end - r0);
    const int64_t n1 = std::min<int64_t>(kTile, std::max<int64_t>(0, row_end - r0 - kTile));
    for (int64_t c = 0; c < chunks; ++c) {
      WeightTiles(w, r0, n0, c, f16, tile_at(0, c, 0), tile_at(0, c, 1));
      if (n1 > 0) WeightTiles(w, r0 + kTile, n1, c, f16, tile_at(1, c, 0), tile_at(1, c, 1));
    }
    for (int64_t b = 0; b < blocks; b += 2) {
      const bool two = b + 1 < blocks;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      const uint16_t* xa = xb + static_cast<size_t>(b * kTile) * K;
      const uint16_t* xc = xa + static_cast<size_t>(kTile) * K;
      for (int64_t c = 0; c < chunks; ++c) {
        _tile_loadd(4, xa + c * kChunk, xstride);
        if (two) _tile_loadd(5, xc + c * kChunk, xstride);
        for (int part = 0; part < (f16 ? 2 : 1); ++part) {
          _tile_loadd(6, tile_at(0, c, part), 64);
          _tile_dpbf16ps(0, 4, 6);
          if (two) _tile_dpbf16ps(2, 5, 6);
          if (n1 > 0) {
            _tile_loadd(6, tile_at(1, c, part), 64);
            _tile_dpbf16ps(1, 4, 6);
            if (two) _tile_dpbf16ps(3, 5, 6);
          }
        }
      }
      const int64_t m0 = std::min<int64_t>(kTile, T - b * kTile);
      StoreAcc(0, y, O, b * kTile, r0, m0, n0);
      if (n1 > 0) StoreAcc(1, y, O, b * kTile, r0 + kTile, m0, n1);
      if (two) {
        const int64_t m1 = std::min<int64_t>(kTile, T - (b + 1) * kTile);
        StoreAcc(2, y, O, (b + 1) * kTile, r0, m1, n0);
        if (n1 > 0) StoreAcc(3, y, O, (b + 1) * kTile, r0 + kTile, m1, n1);
      }
    }
  }
  _tile_release();
}

KINFER_AMX void ToBf16Impl(const float* x, int64_t T, int64_t K, uint16_t* xb) {
  const int64_t rows = (T + kTile - 1) / kTile * kTile;
  for (int64_t t = 0; t < rows; ++t) {
    uint16_t* out = xb + static_cast<size_t>(t) * K;
    if (t >= T) {
      std::memset(out, 0, static_cast<size_t>(K) * 2);
      continue;
    }
    const float* in = x + t * K;
    for (int64_t k = 0; k < K; k += kChunk) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + k + 16), _mm512_loadu_ps(in + k));
      _mm512_storeu_si512(out + k, reinterpret_cast<__m512i>(v));
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
  return (t == DType::kBF16 || t == DType::kF16) && cols % kChunk == 0 && AmxBf16Usable();
}

size_t AmxActivationElements(int64_t T, int64_t K) {
  return static_cast<size_t>((T + kTile - 1) / kTile * kTile) * static_cast<size_t>(K);
}

void ToBf16Activations(const float* x, int64_t T, int64_t K, uint16_t* xb) {
  ToBf16Impl(x, T, K, xb);
}

void AmxBf16Rows(const TensorView& w, const uint16_t* xb, int64_t T, float* y, int64_t row_begin,
                 int64_t row_end) {
  AmxRowsImpl(w, xb, T, y, row_begin, row_end);
}

#else
bool UsesAmxBf16(DType, int64_t) { return false; }
size_t AmxActivationElements(int64_t, int64_t) { return 0; }
void ToBf16Activations(const float*, int64_t, int64_t, uint16_t*) {}
void AmxBf16Rows(const TensorView&, const uint16_t*, int64_t, float*, int64_t, int64_t) {}
#endif

}  // namespace kinfer::kernels::internal
