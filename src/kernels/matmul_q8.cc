// MatMul for Q8_0 and Q4_0 weights (stored or packed, pack.h) on 8-bit activations: VNNI
// integer dot products where the CPU has AVX-512 VNNI (Highway's AVX3_DL target, opted in
// here), and the scalar statement of that path, MatMulQ8Ref.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_q8.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "kernels/internal/simd-inl.h"
// clang-format on

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/internal/matmul_paths.h"
#include "kernels/internal/two_term.h"
#include "kernels/matmul.h"
#include "kernels/matmul_q8.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

// Q8_0 and Q4_0 weights against activations quantized per token to 8 bits (blocks of 32 with an
// f32 scale, round to nearest even), with integer dot products: VNNI's vpdpbusd on CPUs that
// have it (Highway's AVX3_DL target), where it does four times the multiply-adds of an f32 FMA.
// Each term of the two-term activations (internal/two_term.h) is one virtual token, and each
// (row, virtual token) output is the scalar recurrence
//   acc = fma(float(isum_b), dw_b * dx_b, acc)   over blocks b in order, from acc = 0,
// where isum_b is the exact integer block dot product; a token's output is the sum of its two.
// Integer sums have no rounding, so any way of computing them gives the same acc: the decode path
// (rows reduced with hadd) and the prefill path (rows in lanes of a repacked panel) agree bit for
// bit with MatMulQ8Ref.

struct ActQ8 {
  const int8_t* qx;   // [T][K]
  const float* dx;    // [T][K / 32]
  const int32_t* sx;  // [T][K / 32]: sum of the block's qx
};

// Two-term quantization (internal/two_term.h) of T tokens into 2T virtual rows: row 2t the
// first term q1 (scale d1), row 2t + 1 the second q2 (scale d2 = d1 / 254).
void QuantizeQ8Impl(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sx) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> di8;
  const int64_t N = Lanes();
  const int64_t nb = K / kQK;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * kQK;
      auto m = hn::Zero(df);
      for (int64_t j = 0; j < kQK; j += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, xb + j)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, m));
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      const float d1 = amax / 127.0f, d2 = d1 / 254.0f;
      const float id2 = d2 > 0.0f ? 1.0f / d2 : 0.0f;
      const auto vid = hn::Set(df, id), vd1 = hn::Set(df, d1), vid2 = hn::Set(df, id2);
      const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
      auto sum1 = hn::Zero(di), sum2 = hn::Zero(di);
      for (int64_t j = 0; j < kQK; j += N) {
        const auto v = hn::LoadU(df, xb + j);
        const auto a = hn::Round(hn::Mul(v, vid));
        const auto q1 = hn::ConvertTo(di, a);
        const auto q2 =
            hn::Min(hn::Max(hn::NearestInt(hn::Mul(hn::NegMulAdd(a, vd1, v), vid2)), lo), hi);
        sum1 = hn::Add(sum1, q1);
        sum2 = hn::Add(sum2, q2);
        hn::StoreU(hn::DemoteTo(di8, q1), di8, qx + (2 * t) * K + b * kQK + j);
        hn::StoreU(hn::DemoteTo(di8, q2), di8, qx + (2 * t + 1) * K + b * kQK + j);
      }
      dx[(2 * t) * nb + b] = d1;
      dx[(2 * t + 1) * nb + b] = d2;
      sx[(2 * t) * nb + b] = hn::GetLane(hn::SumOfLanes(di, sum1));
      sx[(2 * t + 1) * nb + b] = hn::GetLane(hn::SumOfLanes(di, sum2));
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL
constexpr bool kHaveQ8Path = true;
// Highway's AVX3_DL target string lacks avx512vnni (it has the VEX avxvnni); its runtime check
// does require AVX512-VNNI, so code for this target may use it.
#define KINFER_VNNI __attribute__((target(HWY_TARGET_STR ",avx512vnni")))

// Weight formats as 32 unsigned bytes per block plus the offset to take back: u = w + kCorr.
struct IntQ8_0 {
  static constexpr int kCorr = 128;
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static HWY_INLINE __m256i Unpack(const uint8_t* blk) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};
struct IntQ4_0 {
  static constexpr int kCorr = 8;
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  // The 16 bytes in both halves, the upper half shifted down a nibble: low nibbles (elements
  // 0..15) then high nibbles (16..31), in three instructions.
  static HWY_INLINE __m256i Unpack(const uint8_t* blk) {
    const __m256i v =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    const __m256i shift = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    return _mm256_and_si256(_mm256_srlv_epi16(v, shift), _mm256_set1_epi8(0x0F));
  }
};

// Lane r = sum of the eight lanes of p[r].
HWY_INLINE __m256i Hsum8(const __m256i* p) {
  const __m256i e = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  const __m256i f = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(e, f, 0x20),
                          _mm256_permute2x128_si256(e, f, 0x31));
}

// Decode: up to 8 rows (lanes) against C tokens, weights unpacked in registers once per block.
template <class F, int C>
KINFER_VNNI void Q8Rows8(const uint8_t* w, size_t row_bytes, int64_t rows, const ActQ8& a,
                         int64_t K, float* y, int64_t ys) {
  const int64_t nb = K / kQK;
  const uint8_t* rp[8];
  for (int r = 0; r < 8; ++r)
    rp[r] = w + static_cast<size_t>(std::min<int64_t>(r, rows - 1)) * row_bytes;
  __m256 acc[C];
  KINFER_UNROLL for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i wv[8];
    uint16_t hs[8];
    KINFER_UNROLL for (int r = 0; r < 8; ++r) {
      const uint8_t* blk = rp[r] + b * F::kBlockBytes;
      PrefetchStream(blk);
      wv[r] = F::Unpack(blk);
      std::memcpy(&hs[r], blk, 2);
    }
    // Scales assembled in a register: eight scalar stores read back as one vector would miss
    // store forwarding on every block. The conversion is exact.
    const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
        static_cast<int16_t>(hs[0]), static_cast<int16_t>(hs[1]), static_cast<int16_t>(hs[2]),
        static_cast<int16_t>(hs[3]), static_cast<int16_t>(hs[4]), static_cast<int16_t>(hs[5]),
        static_cast<int16_t>(hs[6]), static_cast<int16_t>(hs[7])));
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      const __m256i xq =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qx + c * K + b * kQK));
      __m256i p[8];
      KINFER_UNROLL for (int r = 0; r < 8; ++r) p[r] =
          _mm256_dpbusd_epi32(_mm256_setzero_si256(), wv[r], xq);
      const __m256i isum =
          _mm256_sub_epi32(Hsum8(p), _mm256_set1_epi32(F::kCorr * a.sx[c * nb + b]));
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                               _mm256_mul_ps(dw, _mm256_set1_ps(a.dx[c * nb + b])), acc[c]);
    }
  }
  KINFER_UNROLL for (int c = 0; c < C; ++c) {
    alignas(32) float out[8];
    _mm256_store_ps(out, acc[c]);
    for (int64_t r = 0; r < rows; ++r) y[c * ys + r] = out[r];
  }
}

// Packed groups of 16 rows (kernels/pack.h): one 64-byte vector holds 4 bytes of one block of
// each row (row r in lane r); a token's 4 matching bytes are broadcast against it, so each lane
// sums its own row's block and no horizontal sums are needed.
struct PackQ8_0 {
  static constexpr int kCorr = 128;
  static constexpr int kVecs = 8;         // 64-byte vectors of quants a block
  static constexpr int kScaleWords = 16;  // f16 words of scales (and mins) a block
  static constexpr bool kHasMin = false;
  static constexpr DType kStored = DType::kQ8_0;
  // Vector j of unsigned weights and the offset in the block of the x bytes it multiplies.
  static HWY_INLINE void Unpack(const uint8_t* q, __m512i (&w)[8]) {
    KINFER_UNROLL for (int j = 0; j < 8; ++j) w[j] = _mm512_loadu_si512(q + 64 * j);
  }
  static constexpr int XOff(int j) { return 4 * j; }
};
struct PackQ4_0 {
  static constexpr int kCorr = 8;
  static constexpr int kVecs = 4;
  static constexpr int kScaleWords = 16;
  static constexpr bool kHasMin = false;
  static constexpr DType kStored = DType::kQ4_0;
  static HWY_INLINE void Unpack(const uint8_t* q, __m512i (&w)[8]) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    KINFER_UNROLL for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(q + 64 * j);
      w[j] = _mm512_and_si512(v, m);
      w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
    }
  }
  static constexpr int XOff(int j) { return j < 4 ? 4 * j : 16 + 4 * (j - 4); }
};

// Q5_0 and Q5_1: the nibbles as Q4_0, and vector 4 holds each row's 32 fifth bits (qh, bit e
// for element e). vpmultishiftqb moves bit 4j + i (low) or 16 + 4j + i (high) of a row's qh to
// bit 4 of byte i of its lane: a byte at offset o of a qword reads bits o..o+7, rotating.
template <DType kType>
struct PackQ5 {
  static constexpr int kCorr = kType == DType::kQ5_0 ? 16 : 0;
  static constexpr int kVecs = 5;
  static constexpr bool kHasMin = kType == DType::kQ5_1;
  static constexpr int kScaleWords = kHasMin ? 32 : 16;
  static constexpr DType kStored = kType;
  static constexpr uint64_t Control(int first) {  // first: element of the vector's byte 0
    uint64_t c = 0;
    for (int k = 0; k < 8; ++k) {
      c |= static_cast<uint64_t>((32 * (k / 4) + first + k % 4 - 4) & 63) << (8 * k);
    }
    return c;
  }
  static HWY_INLINE void Unpack(const uint8_t* q, __m512i (&w)[8]) {
    const __m512i m = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    const __m512i qh = _mm512_loadu_si512(q + 4 * 64);
    KINFER_UNROLL for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(q + 64 * j);
      const __m512i hl =
          _mm512_multishift_epi64_epi8(_mm512_set1_epi64(static_cast<int64_t>(Control(4 * j))), qh);
      const __m512i hh = _mm512_multishift_epi64_epi8(
          _mm512_set1_epi64(static_cast<int64_t>(Control(16 + 4 * j))), qh);
      w[j] = _mm512_or_si512(_mm512_and_si512(v, m), _mm512_and_si512(hl, b4));
      w[j + 4] =
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m), _mm512_and_si512(hh, b4));
    }
  }
  static constexpr int XOff(int j) { return j < 4 ? 4 * j : 16 + 4 * (j - 4); }
};

// How far ahead of its loads PackedGroup prefetches the weights (into L2, as PrefetchStream):
// with the packed weights in 2 MiB pages (pack.cc's slabs), 4 KiB ahead streamed Q4_0 and Q8_0
// 5-7% faster than 8 KiB on Qwen2.5-0.5B and Llama-3.2-1B shapes at 2 threads
// (bench/decode_stream_bench, alternated); 2 KiB and 16 KiB were slower than 4 KiB.
constexpr int64_t kQ8StreamPrefetchBytes = 4096;
// And how far ahead it prefetches them again, into L1, so that the loads hit L1 instead of
// waiting on L2 (as matmul_kquant.cc's PrefetchInPlace): Q4_0 went from 0.85 to 0.95 of a plain
// sum on Llama-3.2-1B shapes and from 0.80 to 0.89 on Qwen2.5-0.5B, Q8_0 from 0.97 to 1.01 and
// from 0.93 to 0.97 (decode_stream_bench, 2 threads, 3 alternated runs; 512 B ahead about as
// good). Q5_1's scales and mins, a line a block, are prefetched into L2 too: with the L1
// prefetches alone it did not gain (0.88-0.91), with both 0.91-0.92; the other formats' scales
// (half a line a block) prefetched so were slower.
constexpr int64_t kQ8L1PrefetchBytes = 1024;

// C tokens against one packed group: y[c * ys + r] for the rows r in `mask`.
template <class F, int C>
KINFER_VNNI void PackedGroup(const uint8_t* q, const uint16_t* s, int64_t nb, const ActQ8& a,
                             int64_t K, float* y, int64_t ys, __mmask16 mask) {
  // Independent integer chains per token, so that one token's vpdpbusd latency is hidden; the
  // block's integer sum is exact whatever the order.
  constexpr int A = C == 1 ? 4 : (C == 2 ? 2 : 1);
  constexpr int64_t kQBytes = F::kVecs * 64;
  __m512 acc[C];
  KINFER_UNROLL for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* qb = q + b * kQBytes;
    KINFER_UNROLL for (int j = 0; j < F::kVecs; ++j) {
      PrefetchStream(qb + 64 * j, kQ8StreamPrefetchBytes);
      __builtin_prefetch(qb + 64 * j + kQ8L1PrefetchBytes, 0, 3);
    }
    if constexpr (F::kHasMin) {  // scales and mins, a line a block: prefetched as the quants
      __builtin_prefetch(s + (b + kQ8StreamPrefetchBytes / kQBytes) * F::kScaleWords, 0, 2);
    }
    __m512i w[8];
    F::Unpack(qb, w);
    const uint16_t* sb = s + b * F::kScaleWords;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb)));
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      const int8_t* xb = a.qx + c * K + b * kQK;
      __m512i is[A];
      is[0] = F::kCorr ? _mm512_set1_epi32(-F::kCorr * a.sx[c * nb + b]) : _mm512_setzero_si512();
      KINFER_UNROLL for (int i = 1; i < A; ++i) is[i] = _mm512_setzero_si512();
      KINFER_UNROLL for (int j = 0; j < 8; ++j) {
        int32_t xj;
        std::memcpy(&xj, xb + F::XOff(j), 4);
        is[j % A] = _mm512_dpbusd_epi32(is[j % A], w[j], _mm512_set1_epi32(xj));
      }
      KINFER_UNROLL for (int i = 1; i < A; ++i) is[0] = _mm512_add_epi32(is[0], is[i]);
      const __m512 vdx = _mm512_set1_ps(a.dx[c * nb + b]);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[0]), _mm512_mul_ps(dw, vdx), acc[c]);
      if constexpr (F::kHasMin) {  // + X * m * dx, X the block's sum of qx
        const __m512 mw =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + kPackRows)));
        acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(static_cast<float>(a.sx[c * nb + b])),
                                 _mm512_mul_ps(mw, vdx), acc[c]);
      }
    }
  }
  KINFER_UNROLL for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(y + c * ys, mask, acc[c]);
}

template <class F>
KINFER_VNNI void PackedGroupTokens(int c, const uint8_t* q, const uint16_t* s, int64_t nb,
                                   const ActQ8& a, int64_t K, float* y, int64_t ys,
                                   __mmask16 mask) {
  switch (c) {
    case 1:
      return PackedGroup<F, 1>(q, s, nb, a, K, y, ys, mask);
    case 2:
      return PackedGroup<F, 2>(q, s, nb, a, K, y, ys, mask);
    case 3:
      return PackedGroup<F, 3>(q, s, nb, a, K, y, ys, mask);
    case 4:
      return PackedGroup<F, 4>(q, s, nb, a, K, y, ys, mask);
    case 5:
      return PackedGroup<F, 5>(q, s, nb, a, K, y, ys, mask);
    case 6:
      return PackedGroup<F, 6>(q, s, nb, a, K, y, ys, mask);
    default:
      HWY_ASSERT(false);
  }
}

// The lanes of group g that fall in rows [row_begin, row_end).
HWY_INLINE __mmask16 GroupMask(int64_t g, int64_t row_begin, int64_t row_end) {
  const int64_t lo = std::max<int64_t>(row_begin - g * kPackRows, 0);
  const int64_t hi = std::min<int64_t>(row_end - g * kPackRows, kPackRows);
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Tokens whose 8-bit activations stay in L2 while a thread's groups stream past them.
HWY_INLINE int64_t TokenBlock(int64_t K) {
  return std::max<int64_t>(kMaxC, (256 << 10) / K / kMaxC * kMaxC);
}

// Rows [row_begin, row_end) of a packed matrix for all T tokens.
template <class F>
KINFER_VNNI void PackedRowsT(const TensorView& w, const ActQ8& act, int64_t T, float* y,
                             int64_t row_begin, int64_t row_end) {
  const PackedLayout p(w);
  const int64_t O = w.rows(), K = w.cols(), nb = p.blocks;
  const int64_t g_end = (row_end + kPackRows - 1) / kPackRows;
  const int64_t tb = TokenBlock(K);
  for (int64_t t1 = 0; t1 < T; t1 += tb) {
    const int64_t t1_end = std::min(T, t1 + tb);
    for (int64_t g = row_begin / kPackRows; g < g_end; ++g) {
      const __mmask16 mask = GroupMask(g, row_begin, row_end);
      for (int64_t t0 = t1; t0 < t1_end; t0 += kMaxC) {
        const int c = static_cast<int>(std::min<int64_t>(kMaxC, t1_end - t0));
        const ActQ8 a{act.qx + t0 * K, act.dx + t0 * nb, act.sx + t0 * nb};
        PackedGroupTokens<F>(c, p.quants(g, 0), p.scales(g, 0), nb, a, K,
                             y + t0 * O + g * kPackRows, O, mask);
      }
    }
  }
}

// Stored (unpacked) rows: few tokens unpack each block in registers (Q8Rows8, F the format);
// more tokens, or F void, pack 16 rows at a time into a group and run the packed kernel over it.
template <class F, class P>
KINFER_VNNI void Q8RowsT(const TensorView& w, const ActQ8& act, int64_t T, float* y,
                         int64_t row_begin, int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), nb = K / kQK;
  const size_t row_bytes = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data);
  if constexpr (!std::is_void_v<F>) {
    if (T <= kMaxC) {
      for (int64_t r0 = row_begin; r0 < row_end; r0 += 8) {
        const int64_t rn = std::min<int64_t>(8, row_end - r0);
        const uint8_t* wr = base + static_cast<size_t>(r0) * row_bytes;
        switch (T) {
          case 1:
            Q8Rows8<F, 1>(wr, row_bytes, rn, act, K, y + r0, O);
            break;
          case 2:
            Q8Rows8<F, 2>(wr, row_bytes, rn, act, K, y + r0, O);
            break;
          case 3:
            Q8Rows8<F, 3>(wr, row_bytes, rn, act, K, y + r0, O);
            break;
          case 4:
            Q8Rows8<F, 4>(wr, row_bytes, rn, act, K, y + r0, O);
            break;
          case 5:
            Q8Rows8<F, 5>(wr, row_bytes, rn, act, K, y + r0, O);
            break;
          case 6:
            Q8Rows8<F, 6>(wr, row_bytes, rn, act, K, y + r0, O);
            break;
          default:
            HWY_ASSERT(false);
        }
      }
      return;
    }
  }
  thread_local std::vector<uint8_t> pq;
  thread_local std::vector<uint16_t> ps;
  const size_t qbytes = static_cast<size_t>(nb * P::kVecs * 64);
  if (pq.size() < qbytes) pq.resize(qbytes);
  if (ps.size() < static_cast<size_t>(nb * P::kScaleWords))
    ps.resize(static_cast<size_t>(nb * P::kScaleWords));
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPackRows) {
    const int64_t rn = std::min<int64_t>(kPackRows, row_end - r0);
    PackGroup(P::kStored, base + static_cast<size_t>(r0) * row_bytes, row_bytes, rn, nb, pq.data(),
              ps.data());
    const __mmask16 mask = static_cast<__mmask16>((1u << rn) - 1);
    for (int64_t t0 = 0; t0 < T; t0 += kMaxC) {
      const int c = static_cast<int>(std::min<int64_t>(kMaxC, T - t0));
      const ActQ8 a{act.qx + t0 * K, act.dx + t0 * nb, act.sx + t0 * nb};
      PackedGroupTokens<P>(c, pq.data(), ps.data(), nb, a, K, y + t0 * O + r0, O, mask);
    }
  }
}

KINFER_VNNI void MatMulQ8RowsImpl(const TensorView& w, const int8_t* qx, const float* dx,
                                  const int32_t* sx, int64_t T, float* y, int64_t row_begin,
                                  int64_t row_end) {
  const ActQ8 act{qx, dx, sx};
  switch (w.dtype) {
    case DType::kQ8_0x16:
      return PackedRowsT<PackQ8_0>(w, act, T, y, row_begin, row_end);
    case DType::kQ4_0x16:
      return PackedRowsT<PackQ4_0>(w, act, T, y, row_begin, row_end);
    case DType::kQ5_0x16:
      return PackedRowsT<PackQ5<DType::kQ5_0>>(w, act, T, y, row_begin, row_end);
    case DType::kQ5_1x16:
      return PackedRowsT<PackQ5<DType::kQ5_1>>(w, act, T, y, row_begin, row_end);
    case DType::kQ8_0:
      return Q8RowsT<IntQ8_0, PackQ8_0>(w, act, T, y, row_begin, row_end);
    case DType::kQ4_0:
      return Q8RowsT<IntQ4_0, PackQ4_0>(w, act, T, y, row_begin, row_end);
    case DType::kQ5_0:
      return Q8RowsT<void, PackQ5<DType::kQ5_0>>(w, act, T, y, row_begin, row_end);
    default:
      return Q8RowsT<void, PackQ5<DType::kQ5_1>>(w, act, T, y, row_begin, row_end);
  }
}
#else
constexpr bool kHaveQ8Path = false;
void MatMulQ8RowsImpl(const TensorView&, const int8_t*, const float*, const int32_t*, int64_t,
                      float*, int64_t, int64_t) {
  HWY_ASSERT(false && "no 8-bit activation path on this target");
}
#endif

bool UsesQ8ActivationsImpl(DType t, int64_t K) {
  return kHaveQ8Path &&
         (t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ5_0 || t == DType::kQ5_1 ||
          t == DType::kQ8_0x16 || t == DType::kQ4_0x16 || t == DType::kQ5_0x16 ||
          t == DType::kQ5_1x16) &&
         K % kQK == 0;
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(UsesQ8ActivationsImpl);
HWY_EXPORT(QuantizeQ8Impl);
HWY_EXPORT(MatMulQ8RowsImpl);

namespace internal {

bool UsesQ8Activations(DType t, int64_t cols) {
  return HWY_DYNAMIC_DISPATCH(UsesQ8ActivationsImpl)(t, cols);
}

void QuantizeQ8(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sx) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ8Impl)(x, T, K, qx, dx, sx);
}

Q8RowsFn Q8ActivationRows() { return HWY_DYNAMIC_DISPATCH(MatMulQ8RowsImpl); }

}  // namespace internal

void MatMulQ8Ref(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  const int64_t nb = w.cols() / kQK;
  const DType stored = StoredTypeOf(w.dtype);
  // One term's recurrence over the blocks.
  internal::TwoTermRefRows(
      w, x, n_tokens, kQK, y,
      [&](const uint8_t* row, const std::vector<int8_t>& qx, const std::vector<float>& dx) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          int32_t isum = 0;
          float dw;
          if (stored == DType::kQ5_0 || stored == DType::kQ5_1) {
            const bool q51 = stored == DType::kQ5_1;
            const uint8_t* blk = row + b * (q51 ? sizeof(BlockQ5_1) : sizeof(BlockQ5_0));
            uint16_t d, m = 0;
            uint32_t qh;
            std::memcpy(&d, blk, 2);
            if (q51) std::memcpy(&m, blk + 2, 2);
            std::memcpy(&qh, blk + (q51 ? 4 : 2), 4);
            const uint8_t* qs = blk + (q51 ? 8 : 6);
            int32_t u = 0, xs = 0;
            for (int i = 0; i < kQK; ++i) {
              const int nib = i < kQK / 2 ? qs[i] & 0xF : qs[i - kQK / 2] >> 4;
              const int8_t xq = qx[static_cast<size_t>(b * kQK + i)];
              u += (nib | static_cast<int>(((qh >> i) & 1) << 4)) * xq;
              xs += xq;
            }
            const float xd = dx[static_cast<size_t>(b)];
            if (q51) {
              acc = std::fma(static_cast<float>(u), Fp16ToFp32(d) * xd, acc);
              acc = std::fma(static_cast<float>(xs), Fp16ToFp32(m) * xd, acc);
            } else {
              acc = std::fma(static_cast<float>(u - 16 * xs), Fp16ToFp32(d) * xd, acc);
            }
            continue;
          }
          if (stored == DType::kQ8_0) {
            const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
            dw = Fp16ToFp32(blk->d);
            for (int i = 0; i < kQK; ++i) isum += blk->qs[i] * qx[static_cast<size_t>(b * kQK + i)];
          } else {
            const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
            dw = Fp16ToFp32(blk->d);
            for (int i = 0; i < kQK / 2; ++i) {
              isum += ((blk->qs[i] & 0xF) - 8) * qx[static_cast<size_t>(b * kQK + i)];
              isum += ((blk->qs[i] >> 4) - 8) * qx[static_cast<size_t>(b * kQK + i + kQK / 2)];
            }
          }
          acc = std::fma(static_cast<float>(isum), dw * dx[static_cast<size_t>(b)], acc);
        }
        return acc;
      });
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
