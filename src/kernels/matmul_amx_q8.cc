// The 8-bit-activation MatMul for Q8_0, Q4_0, Q5_0 and Q5_1 weights (stored or packed) on Intel
// AMX-INT8 tiles, for batches with enough virtual tokens to fill them (MatMulMany in matmul.cc
// decides). These types carry one f16 scale per row per 32-column block, so the VNNI kernel's
// float epilogue needs each block's integer sum by itself: the tiles compute them with K = 32 (A:
// 16 virtual tokens x 32 bytes, B: 8 rows of 16 weight rows x 4 bytes, one packed block's
// vectors), one C tile per block, on the weights unpacked to w = u - corr (TDPBSSD) or, for Q8_0
// against few tokens, its packed bytes u = w + 128 straight from the matrix (TDPBSUD, and the
// epilogue takes back 128 sum(x)). isum = sum(w x) is the same int32 the VNNI kernel computes as
// sum(u x) - corr * sum(x), and the epilogue after it is the VNNI kernel's (PackedGroup in
// matmul_q8.cc), operation for operation, in block order: outputs are bit-identical to the VNNI
// path, so a token's result does not depend on how many tokens share the batch.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/internal/amx_int8_tiles.h"
#include "kernels/internal/amx_tiles.h"
#include "kernels/internal/matmul_amx_int8.h"
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

std::atomic<int64_t> g_q8_min_tokens{kAmxInt8Q8MinTokens};

}  // namespace

int64_t SetAmxInt8Q8MinTokensForTest(int64_t n) { return g_q8_min_tokens.exchange(n); }

#if defined(__x86_64__)
namespace {

// avx512vbmi for Q5's vpmultishiftqb: the caller runs on Highway's AVX3_DL target, which has it.
#define KINFER_AMX_Q8                                                           \
  __attribute__((                                                               \
      target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi," \
             "f16c,fma")))
#define KINFER_NOINLINE __attribute__((noinline))

constexpr int64_t kTile = 16;     // virtual tokens a tile holds, and rows of a group
constexpr int64_t kBlock = 32;    // columns of a block
constexpr int64_t kChunk = 4;     // blocks a tile pass covers (one C tile each)
constexpr int64_t kBBytes = 512;  // one block's B tile: 8 rows of 64 bytes
constexpr int64_t kPrefetchBytes = 16384;
// Token tiles from which Q8_0's weights are prepared as signed bytes (Group).
constexpr int64_t kSignedQ8MinTiles = 4;

// Tiles 0-3: C, the int32 sums of 4 blocks (16 tokens x 16 rows); 4, 5: A, activations of a
// block (16 tokens x 32 bytes); 6, 7: B, a block's weights (8 x 64 bytes: 16 rows x 4 bytes).
constexpr TileShapes kTiles = {{kTile, kTile, kTile, kTile, kTile, kTile, 8, 8},
                               {64, 64, 64, 64, 32, 32, 64, 64}};

// The formats as matmul_q8.cc's Pack* (same offsets, same epilogue).
template <DType kStored>
struct Fmt {
  static constexpr int kCorr = kStored == DType::kQ8_0   ? 128
                               : kStored == DType::kQ4_0 ? 8
                               : kStored == DType::kQ5_0 ? 16
                                                         : 0;
  static constexpr bool kHasMin = kStored == DType::kQ5_1;
  static constexpr int kScaleWords = kHasMin ? 32 : 16;
  static constexpr int64_t kQBytes = kStored == DType::kQ8_0   ? 512
                                     : kStored == DType::kQ4_0 ? 256
                                                               : 320;
};

constexpr uint64_t Q5Control(int first) {  // as matmul_q8.cc's PackQ5::Control
  uint64_t c = 0;
  for (int k = 0; k < 8; ++k) {
    c |= static_cast<uint64_t>((32 * (k / 4) + first + k % 4 - 4) & 63) << (8 * k);
  }
  return c;
}

// One packed block's 8 B-tile rows (row j: elements 4j..4j+3 of each of the 16 rows) at `out`:
// the signed weights w = u - corr, u as matmul_q8.cc's Unpack makes its vectors (Q8_0: as
// stored).
template <DType kStored>
KINFER_AMX_Q8 inline void PrepareBlock(const uint8_t* q, uint8_t* out) {
  __builtin_prefetch(q + kPrefetchBytes);
  __builtin_prefetch(q + kPrefetchBytes + 64);
  __builtin_prefetch(q + kPrefetchBytes + 128);
  __builtin_prefetch(q + kPrefetchBytes + 192);
  if constexpr (kStored == DType::kQ8_0) {
    __builtin_prefetch(q + kPrefetchBytes + 256);
    __builtin_prefetch(q + kPrefetchBytes + 320);
    __builtin_prefetch(q + kPrefetchBytes + 384);
    __builtin_prefetch(q + kPrefetchBytes + 448);
    const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));  // u ^ 0x80 = u - 128
    for (int j = 0; j < 8; ++j) {
      _mm512_store_si512(out + 64 * j, _mm512_xor_si512(_mm512_loadu_si512(q + 64 * j), sign));
    }
  } else if constexpr (kStored == DType::kQ4_0) {
    const __m512i m = _mm512_set1_epi8(0x0F), c8 = _mm512_set1_epi8(8);
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(q + 64 * j);
      _mm512_store_si512(out + 64 * j, _mm512_sub_epi8(_mm512_and_si512(v, m), c8));
      _mm512_store_si512(out + 64 * (j + 4),
                         _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), m), c8));
    }
  } else {
    __builtin_prefetch(q + kPrefetchBytes + 256);
    const __m512i m = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    const __m512i corr = _mm512_set1_epi8(static_cast<char>(Fmt<kStored>::kCorr));
    const __m512i qh = _mm512_loadu_si512(q + 4 * 64);
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(q + 64 * j);
      const __m512i hl = _mm512_multishift_epi64_epi8(
          _mm512_set1_epi64(static_cast<int64_t>(Q5Control(4 * j))), qh);
      const __m512i hh = _mm512_multishift_epi64_epi8(
          _mm512_set1_epi64(static_cast<int64_t>(Q5Control(16 + 4 * j))), qh);
      _mm512_store_si512(
          out + 64 * j,
          _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(v, m), _mm512_and_si512(hl, b4)), corr));
      _mm512_store_si512(
          out + 64 * (j + 4),
          _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m),
                                          _mm512_and_si512(hh, b4)),
                          corr));
    }
  }
}

// _tile_dpbsud / _tile_dpbssd name their tiles in the instruction text: literal numbers only.
#define KINFER_TILE_DP(c, a, b) \
  if constexpr (kUnsigned) {    \
    _tile_dpbsud(c, a, b);      \
  } else {                      \
    _tile_dpbssd(c, a, b);      \
  }

// Four blocks' integer sums for one token tile, in two parts so that vector work runs between
// them while the tiles compute: IssueProducts multiplies activations `a` (4 blocks of 16 x 32
// bytes) by weights `wp` (4 x 512 bytes, unsigned where kUnsigned) into tiles 0-3, StoreProducts
// stores them at u: u[k][token][row], sum(w * x) for block k.
template <bool kUnsigned>
KINFER_AMX_Q8 inline void IssueProducts(const int8_t* a, const uint8_t* wp) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, a, 32);
  _tile_loadd(6, wp, 64);
  KINFER_TILE_DP(0, 4, 6)
  _tile_loadd(5, a + 512, 32);
  _tile_loadd(7, wp + 512, 64);
  KINFER_TILE_DP(1, 5, 7)
  _tile_loadd(4, a + 1024, 32);
  _tile_loadd(6, wp + 1024, 64);
  KINFER_TILE_DP(2, 4, 6)
  _tile_loadd(5, a + 1536, 32);
  _tile_loadd(7, wp + 1536, 64);
  KINFER_TILE_DP(3, 5, 7)
}

KINFER_AMX_Q8 inline void StoreProducts(int32_t* u) {
  _tile_stored(0, u, 64);
  _tile_stored(1, u + 256, 64);
  _tile_stored(2, u + 512, 64);
  _tile_stored(3, u + 768, 64);
}

// The float epilogue of blocks b0..b0 + nk - 1 for n tokens of one tile (sums u as Products
// stores them), exactly as matmul_q8.cc's PackedGroup: isum = sum(w x) (= sum(u x) - corr * sx),
// acc = fma(float(isum), dw * dx, acc), and for Q5_1 acc = fma(float(sx), m * dx, acc); acc
// starts at 0 for block 0 (as the VNNI kernel's accumulators).
template <DType kStored, int nk>
KINFER_AMX_Q8 KINFER_NOINLINE void Epilogue(const int32_t* u, const uint16_t* s, int64_t b0,
                                            const float* dx, const int32_t* sx, const int32_t* cx,
                                            int64_t nb, int64_t n, float* acc) {
  using F = Fmt<kStored>;
  // Unrolled, so that the scales stay in registers and the tokens' fma chains overlap.
  __m512 dw[nk], mw[nk];
#pragma GCC unroll 4
  for (int k = 0; k < nk; ++k) {
    const uint16_t* sb = s + (b0 + k) * F::kScaleWords;
    dw[k] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb)));
    if constexpr (F::kHasMin) {
      mw[k] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + kTile)));
    } else {
      mw[k] = dw[k];
    }
  }
  // cx: Q8_0's -128 sum(x) where the tiles ran its unsigned u (Group), else null.
  auto tokens = [&](auto correct) KINFER_AMX_Q8 {
    for (int64_t t = 0; t < n; ++t) {
      __m512 a = b0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + t * kTile);
#pragma GCC unroll 4
      for (int k = 0; k < nk; ++k) {
        const int64_t i = t * nb + b0 + k;
        __m512i is = _mm512_load_si512(u + k * 256 + t * kTile);
        if constexpr (decltype(correct)::value) is = _mm512_add_epi32(is, _mm512_set1_epi32(cx[i]));
        const __m512 vdx = _mm512_set1_ps(dx[i]);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw[k], vdx), a);
        if constexpr (F::kHasMin) {
          a = _mm512_fmadd_ps(_mm512_set1_ps(static_cast<float>(sx[i])), _mm512_mul_ps(mw[k], vdx),
                              a);
        }
      }
      _mm512_storeu_ps(acc + t * kTile, a);
    }
  };
  if (kStored == DType::kQ8_0 && cx != nullptr) return tokens(std::true_type{});
  tokens(std::false_type{});
}

// One group of 16 rows (quants q: nb blocks of Fmt::kQBytes, scales s: nb * kScaleWords) for
// virtual tokens [t0, t_end) (t0 and t_end even, t0 a multiple of 16; activations as A tiles at
// `at`, nb4 blocks a tile): for the rows r in `mask`, each token's y[t / 2 * O + r], the sum of
// its two terms' (StoreTokenSums). Four blocks at a time are prepared (wbuf) and run against
// every token tile; a tile's products are issued before the previous tile's epilogue reads what
// the tiles stored.
template <DType kStored>
KINFER_AMX_Q8 void Group(const uint8_t* q, const uint16_t* s, int64_t nb, int64_t nb4,
                         const int8_t* at, int64_t t0, int64_t t_end, const float* dx,
                         const int32_t* sx, const int32_t* cx, float* acc, uint8_t* wbuf, float* y,
                         int64_t O, __mmask16 mask) {
  using F = Fmt<kStored>;
  const int64_t n = t_end - t0, tiles = (n + kTile - 1) / kTile;
  alignas(64) int32_t u[2][kChunk * 256];
  // Q8_0 against few token tiles: whole chunks are B tiles as they are in the matrix (unsigned
  // u = w + 128; four blocks' reads stay inside it) and the epilogue takes back 128 sum(x) from
  // each sum; against more, preparing the signed w once costs less than that add for every token.
  const bool raw_q8 = kStored == DType::kQ8_0 && tiles < kSignedQ8MinTiles;
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
    const int64_t nk = std::min(kChunk, nb - b0);
    const bool raw = raw_q8 && nk == kChunk;
    const uint8_t* wp = wbuf;
    if (raw) {
      wp = q + b0 * F::kQBytes;
      for (int64_t j = 0; j < kChunk * kBBytes; j += 64)
        __builtin_prefetch(wp + kPrefetchBytes + j);
    } else {
      for (int64_t k = 0; k < nk; ++k) {
        PrepareBlock<kStored>(q + (b0 + k) * F::kQBytes, wbuf + k * kBBytes);
      }
    }
    auto epilogue = [&](int64_t i) KINFER_AMX_Q8 {
      const int64_t t = t0 + i * kTile;
      const int64_t m = std::min(kTile, n - i * kTile);
      float* a = acc + i * kTile * kTile;
      const int32_t* c = raw ? cx + t * nb : nullptr;
      switch (nk) {
        case 4:
          return Epilogue<kStored, 4>(u[i & 1], s, b0, dx + t * nb, sx + t * nb, c, nb, m, a);
        case 3:
          return Epilogue<kStored, 3>(u[i & 1], s, b0, dx + t * nb, sx + t * nb, c, nb, m, a);
        case 2:
          return Epilogue<kStored, 2>(u[i & 1], s, b0, dx + t * nb, sx + t * nb, c, nb, m, a);
        default:
          return Epilogue<kStored, 1>(u[i & 1], s, b0, dx + t * nb, sx + t * nb, c, nb, m, a);
      }
    };
    for (int64_t i = 0; i < tiles; ++i) {
      const int8_t* a = at + ((t0 / kTile + i) * nb4 + b0) * (kTile * kBlock);
      if (raw) {
        IssueProducts<true>(a, wp);
      } else {
        IssueProducts<false>(a, wp);
      }
      if (i > 0) epilogue(i - 1);
      StoreProducts(u[i & 1]);
    }
    epilogue(tiles - 1);
  }
  StoreTokenSums(acc, n, y + t0 / 2 * O, O, mask);
}

// Blocks of a row as the tiles run them: whole chunks of kChunk (the padding ones zero in `at`).
int64_t PaddedBlocks(int64_t K) { return (K / kBlock + kChunk - 1) / kChunk * kChunk; }

// Rows [row_begin, row_end) of y for T virtual tokens, their activations as A tiles at `at`
// (ToTiles, 32 columns a tile): y [T / 2][O], each token's two terms added.
template <DType kStored>
KINFER_AMX_Q8 void RowsT(const TensorView& w, const int8_t* at, const float* dx, const int32_t* sx,
                         int64_t T, float* y, int64_t row_begin, int64_t row_end) {
  using F = Fmt<kStored>;
  const int64_t O = w.rows(), K = w.cols(), nb = K / kBlock, nb4 = PaddedBlocks(K);
  const bool packed = IsPacked(w.dtype);
  thread_local std::vector<uint8_t> pq;   // a stored group, packed: quants
  thread_local std::vector<uint16_t> ps;  // and scales
  alignas(64) static thread_local uint8_t wbuf[kChunk * kBBytes];
  thread_local std::vector<float> acc;
  if (!packed) {
    if (pq.size() < static_cast<size_t>(nb * F::kQBytes)) {
      pq.resize(static_cast<size_t>(nb * F::kQBytes));
    }
    if (ps.size() < static_cast<size_t>(nb * F::kScaleWords)) {
      ps.resize(static_cast<size_t>(nb * F::kScaleWords));
    }
  }
  // Q8_0 on its unsigned bytes: the epilogue's -128 sum(x) a (virtual token, block), one
  // broadcast operand.
  thread_local std::vector<int32_t> cx;
  if constexpr (kStored == DType::kQ8_0) {
    if (cx.size() < static_cast<size_t>(T * nb)) cx.resize(static_cast<size_t>(T * nb));
    for (int64_t i = 0; i < T * nb; ++i) cx[static_cast<size_t>(i)] = -128 * sx[i];
  }
  LoadTileConfig(kTiles);
  // Tokens whose activations stay in L2 while a thread's groups stream past them.
  const int64_t tb = std::max<int64_t>(kTile, (512 << 10) / K / kTile * kTile);
  if (acc.size() < static_cast<size_t>(tb * kTile)) acc.resize(static_cast<size_t>(tb * kTile));
  for (int64_t t1 = 0; t1 < T; t1 += tb) {
    const int64_t t1_end = std::min(T, t1 + tb);
    if (packed) {
      const PackedLayout p(w);
      const int64_t g_end = (row_end + kPackRows - 1) / kPackRows;
      for (int64_t g = row_begin / kPackRows; g < g_end; ++g) {
        const int64_t lo = std::max<int64_t>(row_begin - g * kPackRows, 0);
        const int64_t hi = std::min<int64_t>(row_end - g * kPackRows, kPackRows);
        const auto mask = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
        Group<kStored>(p.quants(g, 0), p.scales(g, 0), nb, nb4, at, t1, t1_end, dx, sx, cx.data(),
                       acc.data(), wbuf, y + g * kPackRows, O, mask);
      }
    } else {
      const auto* base = static_cast<const uint8_t*>(w.data);
      const size_t row_bytes = w.row_bytes();
      for (int64_t r0 = row_begin; r0 < row_end; r0 += kPackRows) {
        const int64_t rn = std::min<int64_t>(kPackRows, row_end - r0);
        PackGroup(kStored, base + static_cast<size_t>(r0) * row_bytes, row_bytes, rn, nb, pq.data(),
                  ps.data());
        Group<kStored>(pq.data(), ps.data(), nb, nb4, at, t1, t1_end, dx, sx, cx.data(), acc.data(),
                       wbuf, y + r0, O, static_cast<__mmask16>((1u << rn) - 1));
      }
    }
  }
  _tile_release();
}

}  // namespace

bool UseAmxInt8Q8(int64_t T) {
  return T >= g_q8_min_tokens.load(std::memory_order_relaxed) && AmxInt8KUsable();
}

size_t AmxInt8Q8TileBytes(int64_t n_tokens, int64_t K) {
  return AmxTileBytes(2 * n_tokens, PaddedBlocks(K) * kBlock);
}

void AmxInt8Q8Tiles(const int8_t* qx, int64_t n_tokens, int64_t K, int8_t* at) {
  ToTiles(qx, 2 * n_tokens, K, kBlock, PaddedBlocks(K) * kBlock, at);
}

void AmxInt8Q8TokenRows(const TensorView& w, const int8_t* at, const float* dx, const int32_t* sx,
                        int64_t n_tokens, float* y, int64_t row_begin, int64_t row_end) {
  const int64_t T = 2 * n_tokens;
  switch (StoredTypeOf(w.dtype)) {
    case DType::kQ8_0:
      return RowsT<DType::kQ8_0>(w, at, dx, sx, T, y, row_begin, row_end);
    case DType::kQ4_0:
      return RowsT<DType::kQ4_0>(w, at, dx, sx, T, y, row_begin, row_end);
    case DType::kQ5_0:
      return RowsT<DType::kQ5_0>(w, at, dx, sx, T, y, row_begin, row_end);
    default:
      return RowsT<DType::kQ5_1>(w, at, dx, sx, T, y, row_begin, row_end);
  }
}

#else
bool UseAmxInt8Q8(int64_t) { return false; }
size_t AmxInt8Q8TileBytes(int64_t, int64_t) { return 0; }
void AmxInt8Q8Tiles(const int8_t*, int64_t, int64_t, int8_t*) {}
void AmxInt8Q8TokenRows(const TensorView&, const int8_t*, const float*, const int32_t*, int64_t,
                        float*, int64_t, int64_t) {}
#endif

}  // namespace kinfer::kernels::internal
