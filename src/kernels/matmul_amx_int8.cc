// The K-quant 8-bit-activation MatMul (Q4_K, Q5_K, Q6_K) on Intel AMX-INT8 tiles, for batches
// with enough virtual tokens to fill them (MatMulMany in matmul.cc decides). Each row's sub-block
// scales are folded into its weights, v = sc * w (Q6_K: sc * (w - 32)), split exactly into two
// int8 tiles, v = 64 hi + lo; tile dot products (TDPBSSD) of 16 virtual tokens x 16 rows then
// give a super-block's isum = sum_j sc_j U_j as sums(lo) + 64 sums(hi): the same int32 the VNNI
// kernel computes. The float epilogue after it is the VNNI kernel's (BlockQ45K, BlockQ6K in
// matmul_kquant.cc), operation for operation, in the same order: outputs are bit-identical to
// the VNNI path, so a token's result does not depend on how many tokens share the batch.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/internal/amx_int8_tiles.h"
#include "kernels/internal/amx_tiles.h"
#include "kernels/internal/matmul_amx_int8.h"
#include "kernels/internal/matmul_paths.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports the deliberately undefined pass-through operand of some AVX-512 intrinsics
// (_mm512_undefined_epi32) as used uninitialized once they are inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace kinfer::kernels::internal {
namespace {

std::atomic<int64_t> g_min_tokens{kAmxInt8KMinTokens};

}  // namespace

int64_t SetAmxInt8KMinTokensForTest(int64_t n) { return g_min_tokens.exchange(n); }

#if defined(__x86_64__)
namespace {

#define KINFER_AMX_INT8                                                         \
  __attribute__((                                                               \
      target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni," \
             "f16c,fma")))

// The epilogue and the scale set-up stay separate functions: each runs a hundred cycles or more a
// call, so the calls cost nothing measurable and the group loop stays small.
#define KINFER_NOINLINE __attribute__((noinline))

constexpr int64_t kTile = 16;  // tokens a tile holds, and rows of a packed group
// Bytes of one super-block's prepared weights in a group: 4 chunks of 64 elements, each two B
// tiles (16 x 64 bytes: 16 rows x 4 bytes a tile row), the low and the high part (below).
constexpr int64_t kPrepared = 4 * 2 * 1024;
// How far ahead of the weights being read to prefetch (as matmul_kquant.cc: this VM's hardware
// prefetchers alone leave a one-thread stream at a fraction of the bandwidth).
constexpr int64_t kPrefetchBytes = 16384;

// Every tile 16 rows of 64 bytes (kFullTiles). 0, 1: token tile 0's int32 sums of the low and
// high weight parts; 2, 3: token tile 1's; 4, 5: activations of token tiles 0, 1; 6, 7: weights,
// low and high.

// Bit `from` of every byte moved to bit 4, the rest cleared.
KINFER_AMX_INT8 inline __m512i FifthBit(__m512i v, int from) {
  v = _mm512_srlv_epi16(v, _mm512_set1_epi16(static_cast<int16_t>(from)));
  return _mm512_slli_epi16(_mm512_and_si512(v, _mm512_set1_epi8(1)), 4);
}

// Bits from, from + 1 of every byte moved to bits 4, 5, the rest cleared.
KINFER_AMX_INT8 inline __m512i HighPair(__m512i v, int from) {
  if (from < 4) {
    v = _mm512_sllv_epi16(v, _mm512_set1_epi16(static_cast<int16_t>(4 - from)));
  } else if (from > 4) {
    v = _mm512_srlv_epi16(v, _mm512_set1_epi16(static_cast<int16_t>(from - 4)));
  }
  return _mm512_and_si512(v, _mm512_set1_epi8(0x30));
}

// A row's scale for ScaleSplit: 16 scale bytes (one a row) placed for the byte multiply-adds,
// each row's in the even bytes of its 4 (`even`, the odd ones 0) and in the odd bytes (`odd`),
// and `off` times it in every 16-bit lane of the row (`sub`).
struct RowScale {
  __m512i even, odd, sub;
};
KINFER_AMX_INT8 inline RowScale RowScales(const uint8_t* p, bool sign, int off) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m512i x = sign ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
  const __m512i x16 =
      _mm512_or_si512(_mm512_and_si512(x, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(x, 16));
  const __m512i even = _mm512_and_si512(x16, _mm512_set1_epi16(0x00FF));
  return {even, _mm512_slli_epi16(even, 8),
          _mm512_mullo_epi16(x16, _mm512_set1_epi16(static_cast<int16_t>(off)))};
}

// One B-tile row of weights w (bytes, unsigned, < 64) times their rows' scales, less `off`
// times the scale: v = sc * (w - off) exactly (16-bit products, |v| <= 4096), written as
// 64 * hi + lo with lo in [0, 64) and hi in int8 range, so that the tile sums of lo and hi give
// sum(q * v) = sums(lo) + 64 sums(hi).
KINFER_AMX_INT8 inline void ScaleSplit(__m512i w, const RowScale& sc, bool off, uint8_t* lo,
                                       uint8_t* hi) {
  const __m512i m8 = _mm512_set1_epi16(0x00FF);
  __m512i pe = _mm512_maddubs_epi16(w, sc.even), po = _mm512_maddubs_epi16(w, sc.odd);
  if (off) {
    pe = _mm512_sub_epi16(pe, sc.sub);
    po = _mm512_sub_epi16(po, sc.sub);
  }
  // 0xE4: bits of the first operand where the third is set, else the second's.
  const __m512i l = _mm512_ternarylogic_epi32(pe, _mm512_slli_epi16(po, 8), m8, 0xE4);
  _mm512_storeu_si512(lo, _mm512_and_si512(l, _mm512_set1_epi8(63)));
  _mm512_storeu_si512(
      hi, _mm512_ternarylogic_epi32(_mm512_srai_epi16(pe, 6), _mm512_slli_epi16(po, 2), m8, 0xE4));
}

// The scales of one packed super-block's sub-blocks placed for ScaleSplit (RowScales), worked
// out once so that its preparation can run in small steps between tile products (Group).
struct SuperBlockScales {
  RowScale sc[16];  // Q4_K/Q5_K: sub-blocks 0-7; Q6_K: groups of 16 elements 0-15
};

template <DType kStored>
KINFER_AMX_INT8 KINFER_NOINLINE void ScalesOf(const uint8_t* p, SuperBlockScales* s) {
  if constexpr (kStored == DType::kQ6_K) {
    for (int g = 0; g < 16; ++g) s->sc[g] = RowScales(p + 3072 + 16 * g, true, 32);
  } else {
    const int64_t kSc = kStored == DType::kQ5_K ? 2560 : 2048;
    for (int j = 0; j < 8; ++j) s->sc[j] = RowScales(p + kSc + 16 * j, false, 0);
  }
}

// Steps [i0, i1) of 32 of preparing one packed Q4_K/Q5_K super-block of a group (pack.h): step
// i = 8c + j fills row j and 8 + j of chunk c (elements 64c..) as the low then the high B tile of
// sc * w, tile rows 0-7 sub-block 2c (the low nibbles of vectors 8c + j, plus the fifth bits),
// 8-15 sub-block 2c + 1 (the high nibbles).
KINFER_AMX_INT8 inline void PrepareQ45K(const uint8_t* p, bool q5, const SuperBlockScales& s,
                                        int i0, int i1, uint8_t* out) {
  const int lines = (q5 ? 2880 : 2368) / 64;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int i = i0; i < i1; ++i) {
    const int c = i / 8, j = i % 8;
    // Prefetches spread over the steps: issued all at once, they wait for free fill buffers.
    __builtin_prefetch(p + kPrefetchBytes + 64 * i);
    __builtin_prefetch(p + kPrefetchBytes + 64 * std::min(32 + i, lines - 1));
    const __m512i v = _mm512_loadu_si512(p + i * 64);
    __m512i lo = _mm512_and_si512(v, m4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    if (q5) {
      const __m512i h = _mm512_loadu_si512(p + 2048 + j * 64);
      lo = _mm512_or_si512(lo, FifthBit(h, 2 * c));
      hi = _mm512_or_si512(hi, FifthBit(h, 2 * c + 1));
    }
    uint8_t* o = out + c * 2048;
    ScaleSplit(lo, s.sc[2 * c], false, o + j * 64, o + 1024 + j * 64);
    ScaleSplit(hi, s.sc[2 * c + 1], false, o + (8 + j) * 64, o + 1024 + (8 + j) * 64);
  }
}

// Steps [i0, i1) of 32 of preparing one packed Q6_K super-block the same way,
// v = sc * (w - 32) (w the unsigned 6-bit quant): chunk c holds groups 4c..4c+3 of 16 elements,
// tile rows 4(g - 4c).., as matmul_kquant.cc's QuarterQ6K reads them. Step i = 16h + 8pp + j
// (j = 4q + jj) reads low-bit vector i.
KINFER_AMX_INT8 inline void PrepareQ6K(const uint8_t* p, const SuperBlockScales& s, int i0, int i1,
                                       uint8_t* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int i = i0; i < i1; ++i) {
    const int h = i / 16, pp = (i / 8) % 2, j = i % 8, q = j / 4, jj = j % 4;
    const int g = 8 * h + 2 * pp + q;
    __builtin_prefetch(p + kPrefetchBytes + 64 * i);
    __builtin_prefetch(p + kPrefetchBytes + 64 * std::min(32 + i, 3360 / 64 - 1));
    const __m512i l = _mm512_loadu_si512(p + i * 64);
    const __m512i hb = _mm512_loadu_si512(p + 2048 + (8 * h + j) * 64);
    const __m512i lo = _mm512_or_si512(_mm512_and_si512(l, m4), HighPair(hb, 2 * pp));
    const __m512i hi =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), HighPair(hb, 2 * pp + 4));
    const int r = 4 * (g % 4) + jj;
    uint8_t* o = out + (g / 4) * 2048 + r * 64;
    ScaleSplit(lo, s.sc[g], true, o, o + 1024);
    o = out + ((g + 4) / 4) * 2048 + r * 64;
    ScaleSplit(hi, s.sc[g + 4], true, o, o + 1024);
  }
}

template <DType kStored>
KINFER_AMX_INT8 inline void Prepare(const uint8_t* p, const SuperBlockScales& s, int i0, int i1,
                                    uint8_t* out) {
  if constexpr (kStored == DType::kQ6_K) {
    PrepareQ6K(p, s, i0, i1, out);
  } else {
    PrepareQ45K(p, kStored == DType::kQ5_K, s, i0, i1, out);
  }
}

// The tile products of one super-block for token tiles a0 (and a1 where `two`), `stride` bytes
// a token, against its prepared weights wp, in three parts so that vector work can run between
// them while the tiles compute: ZeroSums, ChunkSums for chunks c = 0..3, then StoreSums (lo sums
// then hi sums at u0 and u1, 16 x 16 int32 each).
KINFER_AMX_INT8 inline void ZeroSums(bool two) {
  _tile_zero(0);
  _tile_zero(1);
  if (two) {
    _tile_zero(2);
    _tile_zero(3);
  }
}

KINFER_AMX_INT8 inline void ChunkSums(const int8_t* a0, const int8_t* a1, bool two,
                                      const uint8_t* wp, int c) {
  // Each load comes after the products that read the tile before it, the latest last (tile
  // 7 is the previous chunk's last product's), so that no load waits with others queued behind.
  _tile_loadd(4, a0 + c * 1024, 64);
  _tile_loadd(6, wp + c * 2048, 64);
  _tile_dpbssd(0, 4, 6);
  _tile_loadd(7, wp + c * 2048 + 1024, 64);
  _tile_dpbssd(1, 4, 7);
  if (two) {
    _tile_loadd(5, a1 + c * 1024, 64);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
}

KINFER_AMX_INT8 inline void StoreSums(bool two, int32_t* u0, int32_t* u1) {
  _tile_stored(0, u0, 64);
  _tile_stored(1, u0 + 256, 64);
  if (two) {
    _tile_stored(2, u1, 64);
    _tile_stored(3, u1 + 256, 64);
  }
}

// The float epilogue of super-block b for tokens [t0, t1) of one tile (sums u: lo then hi),
// exactly as matmul_kquant.cc's BlockQ45K / BlockQ6K: isum = sum_j sc_j U_j (the same integer,
// computed as lo + 64 hi), acc = fma(float(isum), d * dx, acc), and for Q4_K/Q5_K
// acc = fnma(float(msum), dmin * dx, acc) with msum from the activation sums (integer sums in
// another grouping: the same int32).
template <DType kStored>
KINFER_AMX_INT8 KINFER_NOINLINE void Epilogue(const uint8_t* p, const int32_t* u, const float* dx,
                                              const int32_t* sums, int64_t nb, int64_t b,
                                              int64_t t0, int64_t t1, float* acc) {
  // The sums so far: none before super-block 0 (the VNNI kernel's accumulators start at 0).
  auto prior = [b](const float* at)
                   KINFER_AMX_INT8 { return b == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(at); };
  if constexpr (kStored == DType::kQ6_K) {
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 3328)));
    for (int64_t t = t0; t < t1; ++t) {
      const __m512i isum =
          _mm512_add_epi32(_mm512_load_si512(u + t * kTile),
                           _mm512_slli_epi32(_mm512_load_si512(u + 256 + t * kTile), 6));
      float* at = acc + t * kTile;
      _mm512_storeu_ps(
          at, _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum),
                              _mm512_mul_ps(d, _mm512_set1_ps(dx[t * nb + b])), prior(at)));
    }
  } else {
    constexpr int64_t kMins = kStored == DType::kQ5_K ? 2688 : 2176;
    constexpr int64_t kD = kStored == DType::kQ5_K ? 2816 : 2304;
    auto mins = [p](int k) KINFER_AMX_INT8 {
      return _mm512_cvtepu8_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kMins + 32 * k)));
    };
    const __m512i m0 = mins(0), m1 = mins(1), m2 = mins(2), m3 = mins(3);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kD)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kD + 32)));
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t* sb = sums + (t * nb + b) * kQ8KSums;
      const __m512i isum =
          _mm512_add_epi32(_mm512_load_si512(u + t * kTile),
                           _mm512_slli_epi32(_mm512_load_si512(u + 256 + t * kTile), 6));
      // One chain (the tokens' chains overlap one another): an add fewer than two halves.
      __m512i msum = _mm512_madd_epi16(m0, _mm512_set1_epi32(sb[0]));
      msum = _mm512_dpwssd_epi32(msum, m1, _mm512_set1_epi32(sb[1]));
      msum = _mm512_dpwssd_epi32(msum, m2, _mm512_set1_epi32(sb[2]));
      msum = _mm512_dpwssd_epi32(msum, m3, _mm512_set1_epi32(sb[3]));
      const __m512 vdx = _mm512_set1_ps(dx[t * nb + b]);
      float* at = acc + t * kTile;
      __m512 a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, vdx), prior(at));
      a = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, vdx), a);
      _mm512_storeu_ps(at, a);
    }
  }
}

// A token pair's sums waiting for their epilogue: super-block b (weights p) of tokens
// [t, t + n0) (tile 0) and [t + 16, t + 16 + n1) (tile 1), stored at u.
struct Pending {
  const uint8_t* p = nullptr;
  int64_t b = 0, r = 0, n0 = 0, n1 = 0;
  const int32_t* u = nullptr;  // [token tile][lo, hi][256]
};

// Quarter c of a pending pair's epilogue: tokens [8c, 8c + 8) of its 32.
template <DType kStored>
KINFER_AMX_INT8 inline void EpilogueQuarter(const Pending& e, int c, int64_t t0, const float* dx,
                                            const int32_t* sums, int64_t nb, float* acc) {
  const int64_t tile = c / 2, n = tile == 0 ? e.n0 : e.n1;
  const int64_t lo = 8 * (c % 2), hi = std::min<int64_t>(lo + 8, n);
  if (lo >= hi) return;
  const int64_t t = t0 + e.r + tile * kTile;  // the tile's first token
  Epilogue<kStored>(e.p, e.u + tile * 512, dx + t * nb, sums + t * nb * kQ8KSums, nb, e.b, lo, hi,
                    acc + (e.r + tile * kTile) * kTile);
}

// One group (nb packed super-blocks `blocks`, gb bytes apart) for virtual tokens [t0, t_end) (t0
// a multiple of 16, t_end even; activations as A tiles at `at`, K columns): for the rows in
// `mask`, token t / 2's output y[t / 2 * O], the sum of its two terms' (virtual tokens t, t + 1)
// as the VNNI path's caller adds them.
// Super-block by super-block, each prepared once (into wbuf, two in turn) and run against every
// token tile while it stays in L1; acc ([t - t0][16], f32) carries each output over the
// super-blocks in order (super-block 0's epilogue starts it). The vector work (the previous pair's
// epilogue, a share of the next super-block's preparation) runs between the tile products of a
// pair, while the tiles compute: the same operations on each output as one after the other.
template <DType kStored>
KINFER_AMX_INT8 void Group(const uint8_t* blocks, int64_t gb, int64_t nb, const int8_t* at,
                           int64_t K, int64_t t0, int64_t t_end, const float* dx,
                           const int32_t* sums, float* acc, uint8_t (*wbuf)[kPrepared], float* y,
                           int64_t O, __mmask16 mask) {
  const int64_t n = t_end - t0, pairs = (n + 2 * kTile - 1) / (2 * kTile);
  const int steps = static_cast<int>(4 * pairs);  // chunk products a super-block
  alignas(64) int32_t u[2][2][512];               // [pair parity][token tile][lo, hi]
  SuperBlockScales scales;
  ScalesOf<kStored>(blocks, &scales);
  Prepare<kStored>(blocks, scales, 0, 32, wbuf[0]);
  Pending e;
  bool pending = false;
  int64_t k = 0;  // pairs run so far: their parity picks u
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wp = wbuf[b & 1];
    const uint8_t* next = blocks + (b + 1) * gb;
    const bool more = b + 1 < nb;
    if (more) ScalesOf<kStored>(next, &scales);
    for (int64_t q = 0; q < pairs; ++q, ++k) {
      const int64_t r = 2 * kTile * q;
      const int8_t* a0 = at + (t0 + r) * K + b * 4096;
      const bool two = n - r > kTile;
      ZeroSums(two);
      for (int c = 0; c < 4; ++c) {
        ChunkSums(a0, two ? a0 + kTile * K : a0, two, wp, c);
        if (pending) EpilogueQuarter<kStored>(e, c, t0, dx, sums, nb, acc);
        if (more) {
          const int s = static_cast<int>(4 * q) + c;
          Prepare<kStored>(next, scales, 32 * s / steps, 32 * (s + 1) / steps, wbuf[(b + 1) & 1]);
        }
      }
      int32_t* uk = u[k & 1][0];
      StoreSums(two, uk, uk + 512);
      e = {blocks + b * gb,
           b,
           r,
           std::min<int64_t>(kTile, n - r),
           std::clamp<int64_t>(n - r - kTile, 0, kTile),
           uk};
      pending = true;
    }
  }
  for (int c = 0; c < 4; ++c) EpilogueQuarter<kStored>(e, c, t0, dx, sums, nb, acc);
  StoreTokenSums(acc, n, y + t0 / 2 * O, O, mask);
}

// Rows [row_begin, row_end) of the T / 2 tokens whose two terms the T virtual tokens are, into
// y ([T / 2][O]); the activations as A tiles of 64 columns at `at` (ToTiles).
template <DType kStored>
KINFER_AMX_INT8 void RowsT(const TensorView& w, const int8_t* at, const float* dx,
                           const int32_t* sums, int64_t T, float* y, int64_t row_begin,
                           int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), nb = K / kQKK;
  const int64_t gb = PackedKBlockBytes(*PackedTypeOf(kStored));
  const bool packed = IsPackedK(w.dtype);
  thread_local std::vector<uint8_t> scratch;                   // a stored group, packed
  alignas(64) static thread_local uint8_t wbuf[2][kPrepared];  // prepared super-blocks
  thread_local std::vector<float> acc;
  if (!packed && scratch.size() < static_cast<size_t>(nb * gb)) {
    scratch.resize(static_cast<size_t>(nb * gb));
  }
  LoadTileConfig(kFullTiles);
  // Tokens whose activations stay in L2 while a thread's groups stream past them (whole pairs
  // of tiles, so that only the last tile of all can be partial).
  const int64_t tb = std::max<int64_t>(2 * kTile, (1 << 20) / K / (2 * kTile) * (2 * kTile));
  if (acc.size() < static_cast<size_t>(tb * kTile)) acc.resize(static_cast<size_t>(tb * kTile));
  const int64_t g_end = (row_end + kPackRows - 1) / kPackRows;
  for (int64_t t1 = 0; t1 < T; t1 += tb) {
    const int64_t t1_end = std::min(T, t1 + tb);
    for (int64_t g = row_begin / kPackRows; g < g_end; ++g) {
      const uint8_t* blocks;
      if (packed) {
        blocks = PackedKLayout(w).block(g, 0);
      } else {
        const int64_t n = std::min<int64_t>(kPackRows, O - g * kPackRows);
        PackGroupK(kStored, w.row(g * kPackRows), w.row_bytes(), n, nb, scratch.data());
        blocks = scratch.data();
      }
      const int64_t lo = std::max<int64_t>(row_begin - g * kPackRows, 0);
      const int64_t hi = std::min<int64_t>(row_end - g * kPackRows, kPackRows);
      const auto mask = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
      Group<kStored>(blocks, gb, nb, at, K, t1, t1_end, dx, sums, acc.data(), wbuf,
                     y + g * kPackRows, O, mask);
    }
  }
  _tile_release();
}

}  // namespace

bool AmxInt8KUsable() {
  static const bool usable = [] {
    const CpuFeatures& f = GetCpuFeatures();
    return f.amx_int8 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni && f.f16c &&
           RequestAmx().usable;
  }();
  return usable;
}

bool UseAmxInt8K(int64_t T) {
  return T >= g_min_tokens.load(std::memory_order_relaxed) && AmxInt8KUsable();
}

size_t AmxInt8KTileBytes(int64_t n_tokens, int64_t K) { return AmxTileBytes(2 * n_tokens, K); }

void AmxInt8KTiles(const int8_t* qx, int64_t n_tokens, int64_t K, int8_t* at) {
  ToTiles(qx, 2 * n_tokens, K, 64, K, at);
}

void AmxInt8KTokenRows(const TensorView& w, const int8_t* at, const float* dx, const int32_t* sums,
                       int64_t n_tokens, float* y, int64_t row_begin, int64_t row_end) {
  const int64_t T = 2 * n_tokens;
  switch (StoredTypeOf(w.dtype)) {
    case DType::kQ4_K:
      return RowsT<DType::kQ4_K>(w, at, dx, sums, T, y, row_begin, row_end);
    case DType::kQ5_K:
      return RowsT<DType::kQ5_K>(w, at, dx, sums, T, y, row_begin, row_end);
    default:
      return RowsT<DType::kQ6_K>(w, at, dx, sums, T, y, row_begin, row_end);
  }
}

#else
bool AmxInt8KUsable() { return false; }
bool UseAmxInt8K(int64_t) { return false; }
size_t AmxInt8KTileBytes(int64_t, int64_t) { return 0; }
void AmxInt8KTiles(const int8_t*, int64_t, int64_t, int8_t*) {}
void AmxInt8KTokenRows(const TensorView&, const int8_t*, const float*, const int32_t*, int64_t,
                       float*, int64_t, int64_t) {}
#endif

}  // namespace kinfer::kernels::internal
