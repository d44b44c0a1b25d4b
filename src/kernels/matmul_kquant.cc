// MatMul for Q4_K, Q5_K and Q6_K weights on 8-bit activations (blocks of 256 with one f32 scale,
// as llama.cpp's Q8_K), with VNNI integer dot products over the 16-row packed layouts of
// pack.h, where the CPU has AVX-512 VNNI (Highway's AVX3_DL target, opted in here); and the
// scalar statement of that path, MatMulQ8KRef.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_kquant.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "kernels/internal/simd-inl.h"
// clang-format on

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/internal/matmul_paths.h"
#include "kernels/internal/two_term.h"
#include "kernels/matmul_kquant.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

using internal::kQ8KSums;

// Activations of T tokens, K columns: qx [T][K] int8; per token and super-block b (nb a row):
// dx [T][nb] the scale, sums [T][nb][kQ8KSums]: four int16 pairs (X32[2k], X32[2k+1]) packed in
// an int32, X32 the sum of a 32-element sub-block's qx; then 32 * X16 for the 16 sums of 16.
struct ActQ8K {
  const int8_t* qx;
  const float* dx;
  const int32_t* sums;
};

// Two-term quantization (internal/two_term.h) of T tokens into 2T virtual rows: row 2t the
// first term, row 2t + 1 the second, each with its scale and sums.
void QuantizeQ8KImpl(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sums) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> di8;
  const int64_t N = Lanes();
  const int64_t nb = K / kQKK;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * kQKK;
      int8_t* q1 = qx + (2 * t) * K + b * kQKK;
      int8_t* q2 = qx + (2 * t + 1) * K + b * kQKK;
      auto m = hn::Zero(df);
      for (int64_t j = 0; j < kQKK; j += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, xb + j)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, m));
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      const float d1 = amax / 127.0f, d2 = d1 / 254.0f;
      const float id2 = d2 > 0.0f ? 1.0f / d2 : 0.0f;
      const auto vid = hn::Set(df, id), vd1 = hn::Set(df, d1), vid2 = hn::Set(df, id2);
      const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
      for (int64_t j = 0; j < kQKK; j += N) {
        const auto v = hn::LoadU(df, xb + j);
        const auto a = hn::Round(hn::Mul(v, vid));
        hn::StoreU(hn::DemoteTo(di8, hn::ConvertTo(di, a)), di8, q1 + j);
        const auto r = hn::NegMulAdd(a, vd1, v);
        hn::StoreU(hn::DemoteTo(di8, hn::Min(hn::Max(hn::NearestInt(hn::Mul(r, vid2)), lo), hi)),
                   di8, q2 + j);
      }
      dx[(2 * t) * nb + b] = d1;
      dx[(2 * t + 1) * nb + b] = d2;
      for (int term = 0; term < 2; ++term) {
        const int8_t* qb = term == 0 ? q1 : q2;
        int32_t x16[16];
        for (int g = 0; g < 16; ++g) {
          int32_t s = 0;
          for (int i = 0; i < 16; ++i) s += qb[16 * g + i];
          x16[g] = s;
        }
        int32_t* sb = sums + ((2 * t + term) * nb + b) * kQ8KSums;
        for (int k = 0; k < 4; ++k) {
          const int32_t l = x16[4 * k] + x16[4 * k + 1], h = x16[4 * k + 2] + x16[4 * k + 3];
          sb[k] = static_cast<int32_t>((static_cast<uint32_t>(l) & 0xFFFFu) |
                                       (static_cast<uint32_t>(h) << 16));
        }
        for (int g = 0; g < 16; ++g) sb[4 + g] = 32 * x16[g];
      }
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL
constexpr bool kHaveQ8KPath = true;
// Highway's AVX3_DL target string lacks avx512vnni (it has the VEX avxvnni); its runtime check
// does require AVX512-VNNI, so code for this target may use it. Nor does it check GFNI: every
// CPU of the target has it (Ice Lake, Sapphire Rapids, Zen 4 and later), and UsesQ8KActivations
// checks it all the same.
#define KINFER_VNNI __attribute__((target(HWY_TARGET_STR ",avx512vnni,gfni")))

// The GF2P8AFFINEQB matrix that moves bits [from, from + width) of every byte to [to, to + width)
// and clears the rest (byte 7 - i of the matrix picks the source bits of result bit i): one
// instruction where a 16-bit shift and a mask took two.
constexpr uint64_t MoveBitsMatrix(int from, int to, int width) {
  uint64_t m = 0;
  for (int k = 0; k < width; ++k) m |= uint64_t{1} << (from + k) << (8 * (7 - (to + k)));
  return m;
}

// The bytes of v moved by `matrix` (a MoveBitsMatrix), taken from a table: the kernels below
// pick theirs by a loop index.
KINFER_VNNI HWY_INLINE __m512i MoveBits(__m512i v, uint64_t matrix) {
  return _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(static_cast<int64_t>(matrix)), 0);
}

// (a & b) | c in one VPTERNLOGD: a quant vector's low bits masked, its high bits added.
KINFER_VNNI HWY_INLINE __m512i AndOr(__m512i a, __m512i b, __m512i c) {
  return _mm512_ternarylogic_epi32(a, b, c, 0xEA);
}

// PrefetchStream where the source puts it, once per vector of weights read: as a builtin, GCC
// hoists all 32 of a Q4_K block's to the block's start, where they queue behind each other for
// the core's few L1 miss buffers (prefetcht1 takes one too) ahead of the block's own loads, and
// the kernel streamed 13% slower (bench/decode_stream_bench, Q4_K at 2 threads: 21.0 against
// 24.1 GB/s). An asm statement keeps its place among the loads.
// Each line is prefetched twice: into L2 kStreamPrefetchBytes ahead, which keeps the DRAM stream
// going (the hardware prefetchers alone do not: every line needs its prefetch), and into L1
// 1 KiB ahead, so that the loads find their lines in L1 rather than wait on L2. The second
// prefetch alone took the kernels from 0.82-0.85 to 0.87-0.89 of a plain sum over the same bytes
// (bench/decode_stream_bench, Llama-3.2-1B shapes, 2 threads; 512 B-2 KiB ahead all did).
HWY_INLINE void PrefetchInPlace(const uint8_t* p) {
  asm volatile("prefetcht1 %0" : : "m"(*(p + kStreamPrefetchBytes)));
  asm volatile("prefetcht0 %0" : : "m"(*(p + 1024)));
}

// Prefetches the lines of a block's bytes [kFrom, kEnd) (scales, mins, d), which no vector load
// of it prefetches: without these, a block's last 4-5 lines in 37-53 reached the kernel unasked
// for, and the streams ran 2-4% slower.
template <int64_t kFrom, int64_t kEnd>
HWY_INLINE void PrefetchRest(const uint8_t* p) {
  KINFER_UNROLL for (int64_t off = kFrom; off < kEnd; off += 64) PrefetchInPlace(p + off);
}

// acc += the unsigned bytes of w times the 4 signed bytes at p, broadcast, as one VPDPBUSD with
// an embedded broadcast: from the intrinsic GCC emits a VPBROADCASTD beside it, one more
// instruction in the window each of the decode loop's dot products.
KINFER_VNNI HWY_INLINE __m512i DpbusdBcast(__m512i acc, __m512i w, const int8_t* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0"
      : "+v"(acc)
      : "v"(w), "m"(*reinterpret_cast<const int32_t*>(p)));
  return acc;
}

// acc += the int16 pairs of m times the pair at p, broadcast (VPDPWSSD with an embedded
// broadcast, as DpbusdBcast).
KINFER_VNNI HWY_INLINE __m512i DpwssdBcast(__m512i acc, __m512i m, const int32_t* p) {
  asm("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(m), "m"(*p));
  return acc;
}

HWY_INLINE __m512i Scales8(const uint8_t* p) {  // 16 unsigned bytes -> 16 int32 lanes
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Q5_K's fifth bits of sub-block b (bit b of each byte) moved to bit 4: kFifthBit[b].
inline constexpr std::array<uint64_t, 8> kFifthBit = [] {
  std::array<uint64_t, 8> m{};
  for (int b = 0; b < 8; ++b) m[static_cast<size_t>(b)] = MoveBitsMatrix(b, 4, 1);
  return m;
}();

// One 64-element chunk c of a Q4_K/Q5_K super-block against C tokens: the two sub-blocks' sums,
// times their scales, into isum. The chunk is a loop's index, not a template's: unrolled four
// times, the block streamed 1-3% slower (bench/decode_stream_bench, Q4_K and Q5_K at 1 and 2
// threads, alternated).
template <bool kQ5, int C>
KINFER_VNNI HWY_INLINE void ChunkQ45K(int c, const uint8_t* p, const int8_t* const* xb,
                                      __m512i (&isum)[C]) {
  constexpr int64_t kSc = kQ5 ? 2560 : 2048;
  static_assert(PackedKBlockBytes(kQ5 ? DType::kQ5_Kx16 : DType::kQ4_Kx16) - kSc == 5 * 64,
                "the tail prefetches below cover five lines of scales, mins and d");
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512i slo[C], shi[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) slo[t] = shi[t] = _mm512_setzero_si512();
  const int8_t* xc[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) xc[t] = xb[t] + 64 * c;
  const uint8_t* pc = p + 512 * c;
  KINFER_UNROLL for (int j = 0; j < 8; ++j) {
    const uint8_t* q = pc + j * 64;
    PrefetchInPlace(q);
    // The block's scale/min/d lines, which no vector load prefetches: one a chunk, spread
    // among the loads, and the fifth at the block's last chunk.
    if (j == 3) PrefetchInPlace(p + kSc + 64 * c);
    if (j == 7 && c == 3) PrefetchInPlace(p + kSc + 64 * 4);
    const __m512i v = _mm512_loadu_si512(q);
    __m512i lo, hi;
    if constexpr (kQ5) {
      if (c == 0) PrefetchInPlace(p + 2048 + j * 64);  // the fifth bits, once
      const __m512i h = _mm512_loadu_si512(p + 2048 + j * 64);
      lo = AndOr(v, m4, MoveBits(h, kFifthBit[2 * c]));
      hi = AndOr(_mm512_srli_epi16(v, 4), m4, MoveBits(h, kFifthBit[2 * c + 1]));
    } else {
      lo = _mm512_and_si512(v, m4);
      hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    }
    KINFER_UNROLL for (int t = 0; t < C; ++t) {
      slo[t] = DpbusdBcast(slo[t], lo, xc[t] + 4 * j);
      shi[t] = DpbusdBcast(shi[t], hi, xc[t] + 32 + 4 * j);
    }
  }
  const __m512i sc_lo = Scales8(p + kSc + 32 * c), sc_hi = Scales8(p + kSc + 32 * c + 16);
  KINFER_UNROLL for (int t = 0; t < C; ++t) {
    isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(slo[t], sc_lo),
                                                         _mm512_mullo_epi32(shi[t], sc_hi)));
  }
}

// One Q4_K/Q5_K super-block of 16 rows against C tokens: acc += isum * d * dx - msum * dmin * dx.
template <bool kQ5, int C>
KINFER_VNNI HWY_INLINE void BlockQ45K(const uint8_t* p, const int8_t* const* xb,
                                      const int32_t* const* sb, const float* dx, __m512 (&acc)[C]) {
  constexpr int64_t kMins = kQ5 ? 2688 : 2176, kD = kQ5 ? 2816 : 2304;
  __m512i isum[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 1
  for (int c = 0; c < 4; ++c) ChunkQ45K<kQ5, C>(c, p, xb, isum);
  __m512i msum[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) msum[t] = _mm512_setzero_si512();
  KINFER_UNROLL for (int k = 0; k < 4; ++k) {
    const __m512i m = _mm512_cvtepu8_epi16(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kMins + 32 * k)));
    KINFER_UNROLL for (int t = 0; t < C; ++t) msum[t] = DpwssdBcast(msum[t], m, sb[t] + k);
  }
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kD)));
  const __m512 dmin =
      _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kD + 32)));
  KINFER_UNROLL for (int t = 0; t < C; ++t) {
    const __m512 vdx = _mm512_set1_ps(dx[t]);
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, vdx), acc[t]);
    acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(dmin, vdx), acc[t]);
  }
}

// Q6_K's high bits of part p (bits 2p, 2p + 1 of each byte for the low nibbles, 2p + 4, 2p + 5
// for the high ones) moved to bits 4 and 5: kHighBits[2p], kHighBits[2p + 1].
inline constexpr std::array<uint64_t, 4> kHighBits = {
    MoveBitsMatrix(0, 4, 2), MoveBitsMatrix(4, 4, 2), MoveBitsMatrix(2, 4, 2),
    MoveBitsMatrix(6, 4, 2)};

// Quarter i = 4h + 2p + q (j = 4q..4q+3) of the (h, p) part of a Q6_K super-block against C
// tokens: groups g = 8h + 2p + q (low nibbles) and g + 4 (high nibbles), each (U - 32 X16) *
// scale into isum. The quarter is a loop's index: unrolled, GCC interleaved all eight quarters'
// sums and spilled them to the stack (the loop streams as fast, within noise, in a third of the
// code).
template <int C>
KINFER_VNNI HWY_INLINE void QuarterQ6K(int i, const uint8_t* p, const int8_t* const* xb,
                                       const int32_t* const* sb, __m512i (&isum)[C]) {
  const int h = i >> 2, pp = (i >> 1) & 1, q = i & 1, g = 8 * h + 2 * pp + q;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512i ulo[C], uhi[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) ulo[t] = uhi[t] = _mm512_setzero_si512();
  const uint8_t* ql0 = p + (16 * h + 8 * pp + 4 * q) * 64;
  const uint8_t* qh0 = p + 2048 + (8 * h + 4 * q) * 64;
  const int64_t e0 = 128 * h + 32 * pp + 16 * q;  // element of the low nibbles
  KINFER_UNROLL for (int jj = 0; jj < 4; ++jj) {
    const uint8_t* ql = ql0 + 64 * jj;
    const uint8_t* qh = qh0 + 64 * jj;
    PrefetchInPlace(ql);
    if (pp == 0) PrefetchInPlace(qh);  // the high bits, once
    const __m512i l = _mm512_loadu_si512(ql), hb = _mm512_loadu_si512(qh);
    const __m512i lo = AndOr(l, m4, MoveBits(hb, kHighBits[2 * pp]));
    const __m512i hi = AndOr(_mm512_srli_epi16(l, 4), m4, MoveBits(hb, kHighBits[2 * pp + 1]));
    KINFER_UNROLL for (int t = 0; t < C; ++t) {
      ulo[t] = DpbusdBcast(ulo[t], lo, xb[t] + e0 + 4 * jj);
      uhi[t] = DpbusdBcast(uhi[t], hi, xb[t] + e0 + 4 * jj + 64);
    }
  }
  const __m512i sc_lo =
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 3072 + 16 * g)));
  const __m512i sc_hi = _mm512_cvtepi8_epi32(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 3072 + 16 * (g + 4))));
  KINFER_UNROLL for (int t = 0; t < C; ++t) {
    const __m512i a = _mm512_sub_epi32(ulo[t], _mm512_set1_epi32(sb[t][4 + g]));
    const __m512i b = _mm512_sub_epi32(uhi[t], _mm512_set1_epi32(sb[t][4 + g + 4]));
    isum[t] = _mm512_add_epi32(
        isum[t], _mm512_add_epi32(_mm512_mullo_epi32(a, sc_lo), _mm512_mullo_epi32(b, sc_hi)));
  }
}

template <int C>
KINFER_VNNI HWY_INLINE void BlockQ6K(const uint8_t* p, const int8_t* const* xb,
                                     const int32_t* const* sb, const float* dx, __m512 (&acc)[C]) {
  __m512i isum[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 1
  for (int i = 0; i < 8; ++i) QuarterQ6K<C>(i, p, xb, sb, isum);
  PrefetchRest<3072, 3360>(p);
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 3328)));
  KINFER_UNROLL for (int t = 0; t < C; ++t) {
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, _mm512_set1_ps(dx[t])),
                             acc[t]);
  }
}

// C tokens against one packed group of nb super-blocks: y[t * ys + r] for the rows r in `mask`.
template <DType kStored, int C>
KINFER_VNNI void KGroup(const uint8_t* blocks, int64_t gb, int64_t nb, const ActQ8K& a, int64_t K,
                        float* y, int64_t ys, __mmask16 mask) {
  __m512 acc[C];
  KINFER_UNROLL for (int t = 0; t < C; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* xb[C];
    const int32_t* sb[C];
    float dx[C];
    KINFER_UNROLL for (int t = 0; t < C; ++t) {
      xb[t] = a.qx + t * K + b * kQKK;
      sb[t] = a.sums + (t * nb + b) * kQ8KSums;
      dx[t] = a.dx[t * nb + b];
    }
    const uint8_t* p = blocks + b * gb;
    if constexpr (kStored == DType::kQ6_K) {
      BlockQ6K<C>(p, xb, sb, dx, acc);
    } else {
      BlockQ45K<kStored == DType::kQ5_K, C>(p, xb, sb, dx, acc);
    }
  }
  KINFER_UNROLL for (int t = 0; t < C; ++t) _mm512_mask_storeu_ps(y + t * ys, mask, acc[t]);
}

template <DType kStored>
KINFER_VNNI void KGroupTokens(int c, const uint8_t* blocks, int64_t gb, int64_t nb, const ActQ8K& a,
                              int64_t K, float* y, int64_t ys, __mmask16 mask) {
  switch (c) {
    case 1:
      return KGroup<kStored, 1>(blocks, gb, nb, a, K, y, ys, mask);
    case 2:
      return KGroup<kStored, 2>(blocks, gb, nb, a, K, y, ys, mask);
    case 3:
      return KGroup<kStored, 3>(blocks, gb, nb, a, K, y, ys, mask);
    case 4:
      return KGroup<kStored, 4>(blocks, gb, nb, a, K, y, ys, mask);
    case 5:
      return KGroup<kStored, 5>(blocks, gb, nb, a, K, y, ys, mask);
    case 6:
      return KGroup<kStored, 6>(blocks, gb, nb, a, K, y, ys, mask);
    default:
      HWY_ASSERT(false);
  }
}

// The lanes of group g that fall in rows [row_begin, row_end).
HWY_INLINE __mmask16 RowMask(int64_t g, int64_t row_begin, int64_t row_end) {
  const int64_t lo = std::max<int64_t>(row_begin - g * kPackRows, 0);
  const int64_t hi = std::min<int64_t>(row_end - g * kPackRows, kPackRows);
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Rows [row_begin, row_end) for all T tokens; stored matrices are packed a group at a time into
// a scratch buffer first, so both layouts run the same arithmetic.
template <DType kStored>
KINFER_VNNI void KRowsT(const TensorView& w, const ActQ8K& act, int64_t T, float* y,
                        int64_t row_begin, int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), nb = K / kQKK;
  const int64_t gb = PackedKBlockBytes(*PackedTypeOf(kStored));
  const bool packed = IsPackedK(w.dtype);
  thread_local std::vector<uint8_t> scratch;
  if (!packed && scratch.size() < static_cast<size_t>(nb * gb)) {
    scratch.resize(static_cast<size_t>(nb * gb));
  }
  // Tokens whose activations stay in L2 while a thread's groups stream past them.
  const int64_t tb = std::max<int64_t>(kMaxC, (256 << 10) / K / kMaxC * kMaxC);
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
      const __mmask16 mask = RowMask(g, row_begin, row_end);
      for (int64_t t0 = t1; t0 < t1_end; t0 += kMaxC) {
        const int c = static_cast<int>(std::min<int64_t>(kMaxC, t1_end - t0));
        const ActQ8K a{act.qx + t0 * K, act.dx + t0 * nb, act.sums + t0 * nb * kQ8KSums};
        KGroupTokens<kStored>(c, blocks, gb, nb, a, K, y + t0 * O + g * kPackRows, O, mask);
      }
    }
  }
}

KINFER_VNNI void MatMulQ8KRowsImpl(const TensorView& w, const int8_t* qx, const float* dx,
                                   const int32_t* sums, int64_t T, float* y, int64_t row_begin,
                                   int64_t row_end) {
  const ActQ8K act{qx, dx, sums};
  switch (StoredTypeOf(w.dtype)) {
    case DType::kQ4_K:
      return KRowsT<DType::kQ4_K>(w, act, T, y, row_begin, row_end);
    case DType::kQ5_K:
      return KRowsT<DType::kQ5_K>(w, act, T, y, row_begin, row_end);
    default:
      return KRowsT<DType::kQ6_K>(w, act, T, y, row_begin, row_end);
  }
}
#else
constexpr bool kHaveQ8KPath = false;
void MatMulQ8KRowsImpl(const TensorView&, const int8_t*, const float*, const int32_t*, int64_t,
                       float*, int64_t, int64_t) {
  HWY_ASSERT(false && "no 8-bit activation path on this target");
}
#endif

bool UsesQ8KActivationsImpl(DType t, int64_t K) {
  const DType s = StoredTypeOf(t);
  return kHaveQ8KPath && GetCpuFeatures().gfni &&
         (s == DType::kQ4_K || s == DType::kQ5_K || s == DType::kQ6_K) && K % kQKK == 0;
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(UsesQ8KActivationsImpl);
HWY_EXPORT(QuantizeQ8KImpl);
HWY_EXPORT(MatMulQ8KRowsImpl);

namespace internal {

bool UsesQ8KActivations(DType t, int64_t cols) {
  return HWY_DYNAMIC_DISPATCH(UsesQ8KActivationsImpl)(t, cols);
}

void QuantizeQ8K(const float* x, int64_t T, int64_t K, int8_t* qx, float* dx, int32_t* sums) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ8KImpl)(x, T, K, qx, dx, sums);
}

Q8RowsFn Q8KActivationRows() { return HWY_DYNAMIC_DISPATCH(MatMulQ8KRowsImpl); }

}  // namespace internal

void MatMulQ8KRef(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  const int64_t nb = w.cols() / kQKK;
  const DType stored = StoredTypeOf(w.dtype);
  // One term's recurrence over the super-blocks.
  internal::TwoTermRefRows(
      w, x, n_tokens, kQKK, y,
      [&](const uint8_t* row, const std::vector<int8_t>& qx, const std::vector<float>& dx) {
        std::vector<int32_t> x16(static_cast<size_t>(nb * 16));
        for (int64_t i = 0; i < nb * 16; ++i) {
          int32_t s = 0;
          for (int k = 0; k < 16; ++k) s += qx[static_cast<size_t>(16 * i + k)];
          x16[static_cast<size_t>(i)] = s;
        }
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const int8_t* q = qx.data() + b * kQKK;
          const int32_t* s16 = x16.data() + b * 16;
          const float xd = dx[static_cast<size_t>(b)];
          if (stored == DType::kQ6_K) {
            const auto* blk = reinterpret_cast<const BlockQ6_K*>(row) + b;
            int32_t isum = 0;
            for (int g = 0; g < 16; ++g) {
              int32_t u = 0;
              for (int i = 0; i < 16; ++i) {
                const int e = 16 * g + i, h = e / 128, k = (e % 128) / 32, l = e % 32;
                const uint8_t lq = blk->ql[64 * h + 32 * (k % 2) + l];
                const int lo = k < 2 ? lq & 0xF : lq >> 4;
                const int hb = (blk->qh[32 * h + l] >> (2 * k)) & 3;
                u += (lo | (hb << 4)) * q[e];
              }
              isum += blk->scales[g] * (u - 32 * s16[g]);
            }
            acc = std::fma(static_cast<float>(isum), Fp16ToFp32(blk->d) * xd, acc);
            continue;
          }
          const bool q5 = stored == DType::kQ5_K;
          const uint8_t* scales = q5 ? reinterpret_cast<const BlockQ5_K*>(row)[b].scales
                                     : reinterpret_cast<const BlockQ4_K*>(row)[b].scales;
          const uint8_t* qs = q5 ? reinterpret_cast<const BlockQ5_K*>(row)[b].qs
                                 : reinterpret_cast<const BlockQ4_K*>(row)[b].qs;
          const uint16_t d = q5 ? reinterpret_cast<const BlockQ5_K*>(row)[b].d
                                : reinterpret_cast<const BlockQ4_K*>(row)[b].d;
          const uint16_t dmin = q5 ? reinterpret_cast<const BlockQ5_K*>(row)[b].dmin
                                   : reinterpret_cast<const BlockQ4_K*>(row)[b].dmin;
          int32_t isum = 0, msum = 0;
          for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            UnpackScaleMinK4(j, scales, &sc, &m);
            int32_t u = 0;
            for (int l = 0; l < 32; ++l) {
              const uint8_t byte = qs[32 * (j / 2) + l];
              int v = j % 2 == 0 ? byte & 0xF : byte >> 4;
              if (q5) v |= ((reinterpret_cast<const BlockQ5_K*>(row)[b].qh[l] >> j) & 1) << 4;
              u += v * q[32 * j + l];
            }
            isum += sc * u;
            msum += m * (s16[2 * j] + s16[2 * j + 1]);
          }
          acc = std::fma(static_cast<float>(isum), Fp16ToFp32(d) * xd, acc);
          acc = std::fma(static_cast<float>(msum), -(Fp16ToFp32(dmin) * xd), acc);
        }
        return acc;
      });
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
