// Highway compiles this file once per SIMD target and dispatches at run time. AVX3_DL (AVX-512
// with VNNI) is opted in for the 8-bit integer matmul.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
// clang-format on

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "core/status.h"
#include "kernels/ops.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
constexpr size_t kMaxLanesF32 = HWY_MAX_BYTES / sizeof(float);

// One f16 block scale to f32: the hardware conversion where the target has one (exact, like the
// portable Fp16ToFp32, which branches and loops on subnormals and costs more than the block).
HWY_INLINE float H2F(uint16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(h);
#else
  return Fp16ToFp32(h);
#endif
}

float DotF32Impl(const float* a, const float* b, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  s0 = hn::Add(hn::Add(s0, s1), hn::Add(s2, s3));
  float sum = hn::GetLane(hn::SumOfLanes(d, s0));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float SumF32Impl(const float* a, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::LoadU(d, a + i));
    s1 = hn::Add(s1, hn::LoadU(d, a + i + N));
    s2 = hn::Add(s2, hn::LoadU(d, a + i + 2 * N));
    s3 = hn::Add(s3, hn::LoadU(d, a + i + 3 * N));
  }
  s0 = hn::Add(hn::Add(s0, s1), hn::Add(s2, s3));
  float sum = hn::GetLane(hn::SumOfLanes(d, s0));
  for (; i < n; ++i) sum += a[i];
  return sum;
}

// The first index of the largest value: the largest by vectors (NaN never wins a comparison),
// then the first element equal to it.
int64_t ArgMaxImpl(const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  float best = -INFINITY;
  int64_t i = 0;
  if (n >= 4 * N) {
    auto m0 = hn::Set(d, -INFINITY), m1 = m0, m2 = m0, m3 = m0;
    for (; i + 4 * N <= n; i += 4 * N) {
      m0 = hn::Max(m0, hn::LoadU(d, x + i));
      m1 = hn::Max(m1, hn::LoadU(d, x + i + N));
      m2 = hn::Max(m2, hn::LoadU(d, x + i + 2 * N));
      m3 = hn::Max(m3, hn::LoadU(d, x + i + 3 * N));
    }
    best = hn::GetLane(hn::MaxOfLanes(d, hn::Max(hn::Max(m0, m1), hn::Max(m2, m3))));
  }
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  const auto vb = hn::Set(d, best);
  i = 0;
  for (; i + N <= n; i += N) {
    const intptr_t k = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), vb));
    if (k >= 0) return i + k;
  }
  for (; i < n; ++i) {
    if (x[i] == best) return i;
  }
  return 0;  // empty, or nothing but NaN and -inf
}

void AddImpl(float* y, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

// ---------------------------------------------------------------------------------------------
// Weight formats as streams of f32 vectors. Each format is a struct whose Unit(row, u, f) calls
// f(offset, v) for the vectors of elements [u * kUnit, (u + 1) * kUnit) of a row, in element
// order, with exactly the values of DequantizeRowRef (same operations, same rounding). The
// panel path stores these vectors and the fused path multiplies them straight into the
// accumulators, so both see the same values in the same order.

using V = hn::Vec<DF>;

HWY_INLINE int64_t Lanes() { return static_cast<int64_t>(hn::Lanes(DF())); }

struct FmtF32 {
  static int64_t Unit() { return Lanes(); }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    f(0, hn::LoadU(DF(), reinterpret_cast<const float*>(row) + u * Lanes()));
  }
  static float Scalar(const uint8_t* row, int64_t k) {
    return reinterpret_cast<const float*>(row)[k];
  }
};

struct FmtF16 {
  static int64_t Unit() { return Lanes(); }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    f(0, hn::PromoteTo(DF(),
                       hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + u * Lanes())));
  }
  static float Scalar(const uint8_t* row, int64_t k) {
    return Fp16ToFp32(reinterpret_cast<const uint16_t*>(row)[k]);
  }
};

struct FmtBF16 {
  static int64_t Unit() { return Lanes(); }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const hn::RebindToUnsigned<DF> du32;
    const hn::Rebind<uint16_t, DF> du16;
    auto v =
        hn::PromoteTo(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(row) + u * Lanes()));
    f(0, hn::BitCast(DF(), hn::ShiftLeft<16>(v)));
  }
  static float Scalar(const uint8_t* row, int64_t k) {
    return Bf16ToFp32(reinterpret_cast<const uint16_t*>(row)[k]);
  }
};

// The block formats need a vector of at most 16 floats (one nibble half of a 32-block).
constexpr bool kBlockVectorsFit = HWY_MAX_BYTES / sizeof(float) <= 16;

struct FmtQ8_0 {
  static int64_t Unit() { return kQK; }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const DF df;
    const hn::RebindToSigned<DF> di;
    const hn::Rebind<int8_t, DF> di8;
    const auto* b = reinterpret_cast<const BlockQ8_0*>(row) + u;
    const auto d = hn::Set(df, H2F(b->d));
    for (int64_t j = 0; j < kQK; j += Lanes()) {
      f(j, hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, b->qs + j))), d));
    }
  }
};

struct FmtQ4_0 {
  static int64_t Unit() { return kQK; }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const DF df;
    const hn::RebindToSigned<DF> di;
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint8_t, DF> du8;
    const auto* b = reinterpret_cast<const BlockQ4_0*>(row) + u;
    const auto d = hn::Set(df, H2F(b->d));
    const auto eight = hn::Set(di, 8);
    for (int half = 0; half < 2; ++half) {
      for (int64_t j = 0; j < kQK / 2; j += Lanes()) {
        auto q = hn::PromoteTo(du, hn::LoadU(du8, b->qs + j));
        q = half == 0 ? hn::And(q, hn::Set(du, 0xF)) : hn::ShiftRight<4>(q);
        f(half * kQK / 2 + j, hn::Mul(hn::ConvertTo(df, hn::Sub(hn::BitCast(di, q), eight)), d));
      }
    }
  }
};

struct FmtQ4_1 {
  static int64_t Unit() { return kQK; }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const DF df;
    const hn::RebindToSigned<DF> di;
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint8_t, DF> du8;
    const auto* b = reinterpret_cast<const BlockQ4_1*>(row) + u;
    const auto d = hn::Set(df, H2F(b->d));
    const auto m = hn::Set(df, H2F(b->m));
    for (int half = 0; half < 2; ++half) {
      for (int64_t j = 0; j < kQK / 2; j += Lanes()) {
        auto q = hn::PromoteTo(du, hn::LoadU(du8, b->qs + j));
        q = half == 0 ? hn::And(q, hn::Set(du, 0xF)) : hn::ShiftRight<4>(q);
        f(half * kQK / 2 + j, hn::Add(hn::Mul(hn::ConvertTo(df, hn::BitCast(di, q)), d), m));
      }
    }
  }
};

// A unit is a quarter super-block: 32 low nibbles then 32 high nibbles of 32 bytes.
struct FmtQ4_K {
  static int64_t Unit() { return 64; }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const DF df;
    const hn::RebindToSigned<DF> di;
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint8_t, DF> du8;
    const auto* b = reinterpret_cast<const BlockQ4_K*>(row) + u / 4;
    const int is = static_cast<int>(u % 4) * 2;
    const uint8_t* q = b->qs + (u % 4) * 32;
    const float d = H2F(b->d), dmin = H2F(b->dmin);
    for (int half = 0; half < 2; ++half) {
      uint8_t sc, m;
      UnpackScaleMinK4(is + half, b->scales, &sc, &m);
      const auto ds = hn::Set(df, d * sc), ms = hn::Set(df, dmin * m);
      for (int64_t l = 0; l < 32; l += Lanes()) {
        auto v = hn::PromoteTo(du, hn::LoadU(du8, q + l));
        v = half == 0 ? hn::And(v, hn::Set(du, 0xF)) : hn::ShiftRight<4>(v);
        f(half * 32 + l, hn::Sub(hn::Mul(ds, hn::ConvertTo(df, hn::BitCast(di, v))), ms));
      }
    }
  }
};

// A unit is 32 consecutive elements: group g (0..3) of one 128-element half of a super-block.
struct FmtQ6_K {
  static int64_t Unit() { return 32; }
  template <class F>
  static HWY_INLINE void Each(const uint8_t* row, int64_t u, F&& f) {
    const DF df;
    const hn::RebindToSigned<DF> di;
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint8_t, DF> du8;
    const auto* b = reinterpret_cast<const BlockQ6_K*>(row) + u / 8;
    const int64_t half = (u / 4) % 2, g = u % 4;
    const uint8_t* ql = b->ql + half * 64 + (g & 1) * 32;
    const uint8_t* qh = b->qh + half * 32;
    const int8_t* sc = b->scales + half * 8 + 2 * g;
    const float d = H2F(b->d);
    for (int64_t l = 0; l < 32; l += Lanes()) {
      auto lo = hn::PromoteTo(du, hn::LoadU(du8, ql + l));
      lo = g < 2 ? hn::And(lo, hn::Set(du, 0xF)) : hn::ShiftRight<4>(lo);
      auto h = hn::PromoteTo(du, hn::LoadU(du8, qh + l));
      h = hn::And(hn::ShiftRightSame(h, static_cast<int>(2 * g)), hn::Set(du, 3));
      auto q = hn::Sub(hn::BitCast(di, hn::Or(lo, hn::ShiftLeft<4>(h))), hn::Set(di, 32));
      // Scale index l / 16: a vector never straddles the two (Lanes() <= 16).
      // NOLINTNEXTLINE(bugprone-integer-division): l / 16 is an index, not a value
      const auto s = hn::Set(df, d * static_cast<float>(sc[l / 16]));
      f(l, hn::Mul(s, hn::ConvertTo(df, q)));
    }
  }
};

// Row [0, K) of format Q to f32 at out, zero-padded to Kp (a multiple of Lanes()).
template <class Q>
void DeqRow(const uint8_t* row, int64_t K, int64_t Kp, float* out) {
  const DF df;
  const int64_t unit = Q::Unit();
  const int64_t units = K / unit;
  for (int64_t u = 0; u < units; ++u) {
    float* o = out + u * unit;
    Q::Each(row, u, [&](int64_t off, V v) { hn::StoreU(v, df, o + off); });
  }
  if constexpr (requires { Q::Scalar(row, 0); }) {
    for (int64_t k = units * unit; k < K; ++k) out[k] = Q::Scalar(row, k);
  }
  for (int64_t k = K; k < Kp; ++k) out[k] = 0.0f;
}

// Types without a vector format: the scalar reference, then zero padding.
template <DType T>
void DeqRowRef(const uint8_t* row, int64_t K, int64_t Kp, float* out) {
  DequantizeRowRef(T, row, out, K);
  for (int64_t k = K; k < Kp; ++k) out[k] = 0.0f;
}

void DequantizeRowImpl(DType t, const void* src, float* dst, int64_t n) {
  const auto* row = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::kF16:
      return DeqRow<FmtF16>(row, n, n, dst);
    case DType::kBF16:
      return DeqRow<FmtBF16>(row, n, n, dst);
    default:
      break;
  }
  if (kBlockVectorsFit) {
    switch (t) {
      case DType::kQ8_0:
        return DeqRow<FmtQ8_0>(row, n, n, dst);
      case DType::kQ4_0:
        return DeqRow<FmtQ4_0>(row, n, n, dst);
      case DType::kQ4_1:
        return DeqRow<FmtQ4_1>(row, n, n, dst);
      case DType::kQ4_K:
        return DeqRow<FmtQ4_K>(row, n, n, dst);
      case DType::kQ6_K:
        return DeqRow<FmtQ6_K>(row, n, n, dst);
      default:
        break;
    }
  }
  DequantizeRowRef(t, src, dst, n);
}

// ---------------------------------------------------------------------------------------------
// MatMul. A thread takes a contiguous range of output rows. Every (row, token) output has one
// f32 vector accumulator that takes MulAdd(w[k..k+N), x[k..k+N)) for k = 0, N, 2N, ... in
// order (a zero-padded vector for a tail), then its lanes are summed by SumOfLanes. Two paths
// follow that sequence exactly, so results do not depend on how many tokens share the call:
// - fused (few tokens): weights are dequantized into registers and used at once;
// - panel (many tokens): a panel of rows is dequantized to f32 once, then register tiles of
//   R rows x C tokens run over it for every group of C tokens.

// Register tiles are arrays of vectors; they stay in registers only when every loop over them
// is unrolled, which -O2 does not do by itself.
#define KINFER_UNROLL _Pragma("GCC unroll 16")

#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr int kTileR = 3, kMaxC = 3;  // 16 vector registers
#else
constexpr int kTileR = 4, kMaxC = 6;  // 32 vector registers
#endif

// Long rows are taken kPanelChunk elements at a time, kChunkedPanelRows rows to a panel
// (a 256 KiB slice of the panel in L2; 6 tokens' 24 KiB of activations in L1).
constexpr int64_t kPanelChunk = 1024;
constexpr int64_t kChunkedPanelRows = 64;

template <int R, int C>
HWY_INLINE void Store(V (&acc)[R][C], float* HWY_RESTRICT y, int64_t ys) {
  const DF d;
  KINFER_UNROLL for (int r = 0; r < R; ++r) {
    KINFER_UNROLL for (int c = 0; c < C; ++c) y[c * ys + r] =
        hn::GetLane(hn::SumOfLanes(d, acc[r][c]));
  }
}

// Elements [k0, k1) of R rows against C tokens. A tile starts from zero at k0 == 0 and ends at
// k1 == K (the zero-padded tail, then lanes summed into y); in between its accumulators wait in
// `part` (R * C vectors). Splitting k so changes nothing in any accumulator's sequence.
template <int R, int C>
HWY_INLINE void Tile(const float* HWY_RESTRICT w, int64_t ws, const float* HWY_RESTRICT x,
                     int64_t xs, int64_t K, int64_t k0, int64_t k1, float* HWY_RESTRICT part,
                     float* HWY_RESTRICT y, int64_t ys) {
  const DF d;
  const int64_t N = Lanes();
  V acc[R][C];
  KINFER_UNROLL for (int r = 0; r < R; ++r) {
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      acc[r][c] = k0 == 0 ? hn::Zero(d) : hn::LoadU(d, part + (r * C + c) * N);
    }
  }
  const int64_t Kf = K / N * N;
  const int64_t kend = std::min(k1, Kf);
  for (int64_t k = k0; k < kend; k += N) {
    V wv[R];
    KINFER_UNROLL for (int r = 0; r < R; ++r) wv[r] = hn::LoadU(d, w + r * ws + k);
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      const V xv = hn::LoadU(d, x + c * xs + k);
      KINFER_UNROLL for (int r = 0; r < R; ++r) acc[r][c] = hn::MulAdd(wv[r], xv, acc[r][c]);
    }
  }
  if (k1 < K) {
    KINFER_UNROLL for (int r = 0; r < R; ++r) {
      KINFER_UNROLL for (int c = 0; c < C; ++c) hn::StoreU(acc[r][c], d, part + (r * C + c) * N);
    }
    return;
  }
  if (Kf < K) {  // the panel is zero-padded; copy x's tail so nothing past it is read
    HWY_ALIGN float tail[kMaxLanesF32] = {};
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      std::memcpy(tail, x + c * xs + Kf, static_cast<size_t>(K - Kf) * 4);
      const V xv = hn::Load(d, tail);
      KINFER_UNROLL for (int r = 0; r < R; ++r) {
        acc[r][c] = hn::MulAdd(hn::LoadU(d, w + r * ws + Kf), xv, acc[r][c]);
      }
    }
  }
  Store<R, C>(acc, y, ys);
}

// Rows [0, rows) of a panel against C tokens over elements [k0, k1) of K; `part` holds the
// tiles' accumulators between chunks (rows * C vectors).
template <int C>
void PanelTokens(const float* w, int64_t ws, int64_t rows, const float* x, int64_t K, int64_t k0,
                 int64_t k1, float* part, float* y, int64_t ys) {
  constexpr int R = C == 1 ? 8 : kTileR;
  const int64_t N = Lanes();
  int64_t r = 0;
  for (; r + R <= rows; r += R) {
    Tile<R, C>(w + r * ws, ws, x, K, K, k0, k1, part + r * C * N, y + r, ys);
  }
  for (; r < rows; ++r) Tile<1, C>(w + r * ws, ws, x, K, K, k0, k1, part + r * C * N, y + r, ys);
}

// R rows of format Q, dequantized into registers, against C tokens. K is whole units.
constexpr int64_t kPrefetchBytes = 16384;

template <class Q, int R, int C>
HWY_INLINE void FusedTile(const uint8_t* w, size_t row_bytes, const float* HWY_RESTRICT x,
                          int64_t K, float* HWY_RESTRICT y, int64_t ys) {
  const DF d;
  V acc[R][C];
  KINFER_UNROLL for (int r = 0; r < R; ++r) {
    KINFER_UNROLL for (int c = 0; c < C; ++c) acc[r][c] = hn::Zero(d);
  }
  const int64_t unit = Q::Unit();
  // Prefetch well ahead on every row: per byte of weights this loop does a lot of work, so the
  // out-of-order window holds too few cache misses to cover DRAM latency by itself (measured on
  // a 151936x896 Q8_0 matrix, one thread: 8 GB/s without, 33 GB/s 16 KiB ahead).
  const int64_t unit_bytes = static_cast<int64_t>(row_bytes) / (K / unit);
  const int64_t ahead = (kPrefetchBytes + unit_bytes - 1) / unit_bytes * unit_bytes;
  for (int64_t u = 0, k = 0; k < K; ++u, k += unit) {
    KINFER_UNROLL for (int r = 0; r < R; ++r) {
      __builtin_prefetch(w + r * row_bytes + u * unit_bytes + ahead);
      Q::Each(w + r * row_bytes, u, [&](int64_t off, V wv) HWY_ATTR {
        KINFER_UNROLL for (int c = 0; c < C; ++c) {
          acc[r][c] = hn::MulAdd(wv, hn::LoadU(d, x + c * K + k + off), acc[r][c]);
        }
      });
    }
  }
  Store<R, C>(acc, y, ys);
}

template <class Q, int C>
void FusedTokens(const uint8_t* w, size_t row_bytes, int64_t rows, const float* x, int64_t K,
                 float* y, int64_t ys) {
  constexpr int R = C == 1 ? 4 : 2;
  int64_t r = 0;
  for (; r + R <= rows; r += R) FusedTile<Q, R, C>(w + r * row_bytes, row_bytes, x, K, y + r, ys);
  for (; r < rows; ++r) FusedTile<Q, 1, C>(w + r * row_bytes, row_bytes, x, K, y + r, ys);
}

template <class Q>
void FusedTokensN(int c, const uint8_t* w, size_t row_bytes, int64_t rows, const float* x,
                  int64_t K, float* y, int64_t ys) {
  switch (c) {
    case 1:
      return FusedTokens<Q, 1>(w, row_bytes, rows, x, K, y, ys);
    case 2:
      return FusedTokens<Q, 2>(w, row_bytes, rows, x, K, y, ys);
    case 3:
      return FusedTokens<Q, 3>(w, row_bytes, rows, x, K, y, ys);
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
    case 4:
      return FusedTokens<Q, 4>(w, row_bytes, rows, x, K, y, ys);
    case 5:
      return FusedTokens<Q, 5>(w, row_bytes, rows, x, K, y, ys);
    case 6:
      return FusedTokens<Q, 6>(w, row_bytes, rows, x, K, y, ys);
#endif
    default:
      HWY_ASSERT(false);
  }
}

void PanelTokensN(int c, const float* w, int64_t ws, int64_t rows, const float* x, int64_t K,
                  int64_t k0, int64_t k1, float* part, float* y, int64_t ys) {
  switch (c) {
    case 1:
      return PanelTokens<1>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 2:
      return PanelTokens<2>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 3:
      return PanelTokens<3>(w, ws, rows, x, K, k0, k1, part, y, ys);
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
    case 4:
      return PanelTokens<4>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 5:
      return PanelTokens<5>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 6:
      return PanelTokens<6>(w, ws, rows, x, K, k0, k1, part, y, ys);
#endif
    default:
      HWY_ASSERT(false);
  }
}

// Row r of w in f32, zero-padded to Kp, as DequantizeRowRef gives it.
using DeqRowFn = void (*)(const TensorView& w, int64_t r, int64_t K, int64_t Kp, float* out);

// A DeqRowFn from a function of the row's bytes.
template <void (*kDeq)(const uint8_t* row, int64_t K, int64_t Kp, float* out)>
void DeqMatrixRow(const TensorView& w, int64_t r, int64_t K, int64_t Kp, float* out) {
  kDeq(static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * w.row_bytes(), K, Kp, out);
}

// A DeqRowFn for a packed matrix (pack.h), which has no row pointers: its stored blocks.
template <DType kStored>
void DeqPackedRow(const TensorView& w, int64_t r, int64_t K, int64_t Kp, float* out) {
  thread_local std::vector<uint8_t> blocks;
  const size_t n = *RowBytes(kStored, K);
  if (blocks.size() < n) blocks.resize(n);
  UnpackRow(w, r, blocks.data());
  DeqRowRef<kStored>(blocks.data(), K, Kp, out);
}

// Output rows [row_begin, row_end) for all T tokens. `fused` runs format Q in registers when
// the tokens fit one group and rows are whole units; `deq` fills panels otherwise.
template <class Q>
void MatMulRowsT(const TensorView& w, const float* x, int64_t T, float* y, int64_t row_begin,
                 int64_t row_end, DeqRowFn deq, bool can_fuse) {
  const int64_t N = Lanes();
  const int64_t O = w.rows(), K = w.cols();
  const int64_t Kp = (K + N - 1) / N * N;
  const size_t row_bytes = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data);
  if (can_fuse && T <= kMaxC) {
    if constexpr (!std::is_same_v<Q, void>) {
      FusedTokensN<Q>(static_cast<int>(T), base + static_cast<size_t>(row_begin) * row_bytes,
                      row_bytes, row_end - row_begin, x, K, y + row_begin, O);
      return;
    }
  }
  // F32 rows of whole vectors are used in place.
  const bool direct = w.dtype == DType::kF32 && Kp == K;
  // Short rows: a panel of rp rows that stays in L2 while every token group streams over it.
  // Long rows (K over kPanelChunk): a taller panel taken kPanelChunk columns at a time, so that a
  // token group's chunk of activations stays in L1 across all the panel's tiles; the tiles'
  // accumulators wait in `part` between chunks (the same sequence of operations either way).
  const bool chunked = Kp > kPanelChunk;
  const int64_t rp =
      chunked ? kChunkedPanelRows : std::clamp<int64_t>((192 << 10) / (Kp * 4) / 8 * 8, 8, 64);
  thread_local std::vector<float> panel, part;
  if (!direct && panel.size() < static_cast<size_t>(rp * Kp))
    panel.resize(static_cast<size_t>(rp * Kp));
  // Tokens go kTokenBlock at a time through all the chunks, so `part` stays small whatever T.
  constexpr int64_t kTokenBlock = 16 * kMaxC;
  const int64_t tb_len = std::min<int64_t>((T + kMaxC - 1) / kMaxC * kMaxC, kTokenBlock);
  if (part.size() < static_cast<size_t>(tb_len * rp * N))
    part.resize(static_cast<size_t>(tb_len * rp * N));
  for (int64_t r0 = row_begin; r0 < row_end; r0 += rp) {
    const int64_t rn = std::min(rp, row_end - r0);
    const float* pw;
    int64_t ws;
    if (direct) {
      pw = reinterpret_cast<const float*>(base + static_cast<size_t>(r0) * row_bytes);
      ws = static_cast<int64_t>(row_bytes / 4);
    } else {
      for (int64_t r = 0; r < rn; ++r) deq(w, r0 + r, K, Kp, panel.data() + r * Kp);
      pw = panel.data();
      ws = Kp;
    }
    const int64_t chunk = chunked ? kPanelChunk : K;
    for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
      const int64_t te = std::min(T, tb + kTokenBlock);
      for (int64_t k0 = 0; k0 < K; k0 += chunk) {
        const int64_t k1 = K - k0 <= chunk ? K : k0 + chunk;
        for (int64_t t0 = tb; t0 < te; t0 += kMaxC) {
          const int c = static_cast<int>(std::min<int64_t>(kMaxC, te - t0));
          PanelTokensN(c, pw, ws, rn, x + t0 * K, K, k0, k1, part.data() + (t0 - tb) * rp * N,
                       y + t0 * O + r0, O);
        }
      }
    }
  }
}

void MatMulRowsImpl(const TensorView& w, const float* x, int64_t T, float* y, int64_t row_begin,
                    int64_t row_end) {
  const int64_t K = w.cols();
  auto run = [&](auto fmt, DeqRowFn deq) {
    using Q = decltype(fmt);
    bool can_fuse = K % Q::Unit() == 0;
    MatMulRowsT<Q>(w, x, T, y, row_begin, row_end, deq, can_fuse);
  };
  switch (w.dtype) {
    case DType::kF32:
      return run(FmtF32(), DeqMatrixRow<DeqRow<FmtF32>>);
    case DType::kF16:
      return run(FmtF16(), DeqMatrixRow<DeqRow<FmtF16>>);
    case DType::kBF16:
      return run(FmtBF16(), DeqMatrixRow<DeqRow<FmtBF16>>);
    default:
      break;
  }
  if (kBlockVectorsFit) {
    switch (w.dtype) {
      case DType::kQ8_0:
        return run(FmtQ8_0(), DeqMatrixRow<DeqRow<FmtQ8_0>>);
      case DType::kQ4_0:
        return run(FmtQ4_0(), DeqMatrixRow<DeqRow<FmtQ4_0>>);
      case DType::kQ4_1:
        return run(FmtQ4_1(), DeqMatrixRow<DeqRow<FmtQ4_1>>);
      case DType::kQ4_K:
        return run(FmtQ4_K(), DeqMatrixRow<DeqRow<FmtQ4_K>>);
      case DType::kQ6_K:
        return run(FmtQ6_K(), DeqMatrixRow<DeqRow<FmtQ6_K>>);
      default:
        break;
    }
  }
  DeqRowFn deq = nullptr;
  switch (w.dtype) {
    case DType::kQ8_0x16:
      return MatMulRowsT<void>(w, x, T, y, row_begin, row_end, DeqPackedRow<DType::kQ8_0>, false);
    case DType::kQ4_0x16:
      return MatMulRowsT<void>(w, x, T, y, row_begin, row_end, DeqPackedRow<DType::kQ4_0>, false);
    case DType::kQ8_0:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ8_0>>;
      break;
    case DType::kQ4_0:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ4_0>>;
      break;
    case DType::kQ4_1:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ4_1>>;
      break;
    case DType::kQ5_0:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ5_0>>;
      break;
    case DType::kQ5_1:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ5_1>>;
      break;
    case DType::kQ4_K:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ4_K>>;
      break;
    case DType::kQ5_K:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ5_K>>;
      break;
    case DType::kQ6_K:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ6_K>>;
      break;
    default:
      HWY_ASSERT(false && "MatMul: unsupported weight type");
  }
  MatMulRowsT<void>(w, x, T, y, row_begin, row_end, deq, false);
}

// ---------------------------------------------------------------------------------------------
// Elementwise and attention kernels.

void SiluMulImpl(const float* gate, const float* up, int64_t n, float* out) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f);
  auto f = [&](auto g, auto u) {
    return hn::Mul(hn::Div(g, hn::Add(one, hn::Exp(d, hn::Neg(g)))), u);
  };
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(f(hn::LoadU(d, gate + i), hn::LoadU(d, up + i)), d, out + i);
  if (i < n) {
    HWY_ALIGN float g[kMaxLanesF32] = {}, u[kMaxLanesF32] = {};
    const size_t rest = static_cast<size_t>(n - i);
    std::memcpy(g, gate + i, rest * 4);
    std::memcpy(u, up + i, rest * 4);
    hn::Store(f(hn::Load(d, g), hn::Load(d, u)), d, g);
    std::memcpy(out + i, g, rest * 4);
  }
}

void RopeImpl(float* x, int64_t heads, int64_t hd, int64_t rot, const float* cos, const float* sin,
              bool interleaved) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t half = rot / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * hd;
    if (interleaved) {
      for (int64_t i = 0; i < half; ++i) {
        float x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = x0 * cos[i] - x1 * sin[i];
        v[2 * i + 1] = x1 * cos[i] + x0 * sin[i];
      }
      continue;
    }
    int64_t i = 0;
    for (; i + N <= half; i += N) {
      auto x0 = hn::LoadU(d, v + i), x1 = hn::LoadU(d, v + half + i);
      auto c = hn::LoadU(d, cos + i), s = hn::LoadU(d, sin + i);
      hn::StoreU(hn::Sub(hn::Mul(x0, c), hn::Mul(x1, s)), d, v + i);
      hn::StoreU(hn::Add(hn::Mul(x1, c), hn::Mul(x0, s)), d, v + half + i);
    }
    for (; i < half; ++i) {
      float x0 = v[i], x1 = v[i + half];
      v[i] = x0 * cos[i] - x1 * sin[i];
      v[i + half] = x1 * cos[i] + x0 * sin[i];
    }
  }
}

template <bool kF16>
HWY_INLINE hn::Vec<DF> LoadKv(const void* p, int64_t i) {
  const DF d;
  if constexpr (kF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, static_cast<const hwy::float16_t*>(p) + i));
  } else {
    return hn::LoadU(d, static_cast<const float*>(p) + i);
  }
}

template <bool kF16>
HWY_INLINE float KvAt(const void* p, int64_t i) {
  if constexpr (kF16) {
    return Fp16ToFp32(static_cast<const uint16_t*>(p)[i]);
  } else {
    return static_cast<const float*>(p)[i];
  }
}

// Cache rows (keys or values) are converted to f32 a chunk at a time, once for every query head
// of the group; the f32 rows hold exactly LoadKv's and KvAt's values.
constexpr int64_t kAttnChunk = 32;

template <bool kF16>
struct KvRows {
  const PagedKvView& kv;
  int64_t hd;
  float* buf;  // kAttnChunk * hd floats (kF16 only)

  const void* At(const void* base, int64_t j) const {
    const int64_t block = kv.block_table[j / kv.block_size];
    const int64_t off = block * kv.block_stride + kv.head_offset + (j % kv.block_size) * hd;
    return static_cast<const uint8_t*>(base) + off * (kF16 ? 2 : 4);
  }
  // Pointers to rows c0..c0+n-1 of `base` as f32.
  void Load(const void* base, int64_t c0, int64_t n, const float** rows) const {
    const DF d;
    const int64_t N = Lanes(), hf = hd / N * N;
    for (int64_t p = 0; p < n; ++p) {
      const void* src = At(base, c0 + p);
      if constexpr (kF16) {
        float* dst = buf + p * hd;
        for (int64_t i = 0; i < hf; i += N) hn::StoreU(LoadKv<true>(src, i), d, dst + i);
        for (int64_t i = hf; i < hd; ++i) dst[i] = KvAt<true>(src, i);
        rows[p] = dst;
      } else {
        rows[p] = static_cast<const float*>(src);
      }
    }
  }
};

// acc[0..NV) += w_p * row_p[d0 + v * N] for the chunk's rows in order: the value rows weighted by
// their probabilities, one output slice held in registers.
template <int NV>
HWY_INLINE void WeightedRows(const float* const* rows, const float* w, int64_t n, int64_t d0,
                             float* out) {
  const DF d;
  const int64_t N = Lanes();
  V acc[NV];
  KINFER_UNROLL for (int v = 0; v < NV; ++v) acc[v] = hn::LoadU(d, out + d0 + v * N);
  for (int64_t p = 0; p < n; ++p) {
    const V vw = hn::Set(d, w[p]);
    KINFER_UNROLL for (int v = 0; v < NV; ++v) {
      acc[v] = hn::MulAdd(vw, hn::LoadU(d, rows[p] + d0 + v * N), acc[v]);
    }
  }
  KINFER_UNROLL for (int v = 0; v < NV; ++v) hn::StoreU(acc[v], d, out + d0 + v * N);
}

template <bool kF16>
void AttendHeadsT(const float* q, int64_t G, int64_t hd, const PagedKvView& kv, int64_t lo,
                  int64_t hi, float scale, float* scores, float* out) {
  const DF d;
  const int64_t N = Lanes();
  const int64_t hf = hd / N * N;
  const int64_t S = hi + 1;  // scores of head g at scores + g * S
  thread_local std::vector<float> buf, maxes, weights;
  if (kF16 && buf.size() < static_cast<size_t>(kAttnChunk * hd)) {
    buf.resize(static_cast<size_t>(kAttnChunk * hd));
  }
  if (maxes.size() < static_cast<size_t>(G)) maxes.resize(static_cast<size_t>(G));
  if (weights.size() < static_cast<size_t>(kAttnChunk)) weights.resize(kAttnChunk);
  const KvRows<kF16> rows_of{kv, hd, buf.data()};
  const float* rows[kAttnChunk];

  // Scores: one dot product a position, lanes summed, then the scalar tail of the head.
  for (int64_t g = 0; g < G; ++g) maxes[static_cast<size_t>(g)] = -INFINITY;
  for (int64_t c0 = lo; c0 <= hi; c0 += kAttnChunk) {
    const int64_t n = std::min(kAttnChunk, hi + 1 - c0);
    rows_of.Load(kv.k_base, c0, n, rows);
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = q + g * hd;
      float mx = maxes[static_cast<size_t>(g)];
      for (int64_t p = 0; p < n; ++p) {
        const float* k = rows[p];
        auto acc = hn::Zero(d);
        for (int64_t i = 0; i < hf; i += N)
          acc = hn::MulAdd(hn::LoadU(d, qg + i), hn::LoadU(d, k + i), acc);
        float s = hf > 0 ? hn::GetLane(hn::SumOfLanes(d, acc)) : 0.0f;
        for (int64_t i = hf; i < hd; ++i) s += qg[i] * k[i];
        s *= scale;
        scores[g * S + c0 + p] = s;
        mx = std::max(mx, s);
      }
      maxes[static_cast<size_t>(g)] = mx;
    }
  }
  // Softmax of each head: exponentials in vectors from lo; the tail through a zero-padded vector.
  for (int64_t g = 0; g < G; ++g) {
    float* sc = scores + g * S;
    const float max_score = maxes[static_cast<size_t>(g)];
    const auto vmax = hn::Set(d, max_score);
    auto vsum = hn::Zero(d);
    int64_t j = lo;
    for (; j + N <= hi + 1; j += N) {
      auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, sc + j), vmax));
      hn::StoreU(e, d, sc + j);
      vsum = hn::Add(vsum, e);
    }
    float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
    if (j <= hi) {
      HWY_ALIGN float t[kMaxLanesF32];
      const int64_t rest = hi + 1 - j;
      for (int64_t i = 0; i < N; ++i) t[i] = i < rest ? sc[j + i] : max_score;
      hn::Store(hn::Exp(d, hn::Sub(hn::Load(d, t), vmax)), d, t);
      for (int64_t i = 0; i < rest; ++i) {
        sc[j + i] = t[i];
        sum += t[i];
      }
    }
    maxes[static_cast<size_t>(g)] = 1.0f / sum;  // from here on: each head's 1 / sum
    std::fill(out + g * hd, out + (g + 1) * hd, 0.0f);
  }
  // Values: out[i] = fma(w_j, v_j[i], out[i]) over j in order, slices of 8 vectors in registers.
  for (int64_t c0 = lo; c0 <= hi; c0 += kAttnChunk) {
    const int64_t n = std::min(kAttnChunk, hi + 1 - c0);
    rows_of.Load(kv.v_base, c0, n, rows);
    for (int64_t g = 0; g < G; ++g) {
      const float inv_sum = maxes[static_cast<size_t>(g)];
      float* w = weights.data();
      for (int64_t p = 0; p < n; ++p) w[p] = scores[g * S + c0 + p] * inv_sum;
      float* og = out + g * hd;
      for (int64_t d0 = 0; d0 < hf; d0 += 8 * N) {
        switch (std::min<int64_t>(8, (hf - d0) / N)) {
          case 1:
            WeightedRows<1>(rows, w, n, d0, og);
            break;
          case 2:
            WeightedRows<2>(rows, w, n, d0, og);
            break;
          case 3:
            WeightedRows<3>(rows, w, n, d0, og);
            break;
          case 4:
            WeightedRows<4>(rows, w, n, d0, og);
            break;
          case 5:
            WeightedRows<5>(rows, w, n, d0, og);
            break;
          case 6:
            WeightedRows<6>(rows, w, n, d0, og);
            break;
          case 7:
            WeightedRows<7>(rows, w, n, d0, og);
            break;
          default:
            WeightedRows<8>(rows, w, n, d0, og);
            break;
        }
      }
      for (int64_t p = 0; p < n; ++p) {
        for (int64_t i = hf; i < hd; ++i) og[i] += w[p] * rows[p][i];
      }
    }
  }
}

void AttendHeadsImpl(const float* q, int64_t G, int64_t hd, const PagedKvView& kv, int64_t lo,
                     int64_t hi, float scale, float* scores, float* out) {
  if (kv.f16) {
    AttendHeadsT<true>(q, G, hd, kv, lo, hi, scale, scores, out);
  } else {
    AttendHeadsT<false>(q, G, hd, kv, lo, hi, scale, scores, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Q8_0 and Q4_0 weights against activations quantized per token to 8 bits (blocks of 32 with an
// f32 scale, round to nearest even), with integer dot products: VNNI's vpdpbusd on CPUs that
// have it (Highway's AVX3_DL target), where it does four times the multiply-adds of an f32 FMA.
// Every (row, token) output is the scalar recurrence
//   acc = fma(float(isum_b), dw_b * dx_b, acc)   over blocks b in order, from acc = 0,
// where isum_b is the exact integer block dot product. Integer sums have no rounding, so any
// way of computing them gives the same acc: the decode path (rows reduced with hadd) and the
// prefill path (rows in lanes of a repacked panel) agree bit for bit with MatMulQ8Ref.

struct ActQ8 {
  const int8_t* qx;   // [T][K]
  const float* dx;    // [T][K / 32]
  const int32_t* sx;  // [T][K / 32]: sum of the block's qx
};

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
      const auto vid = hn::Set(df, id);
      auto sum = hn::Zero(di);
      for (int64_t j = 0; j < kQK; j += N) {
        auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), vid));
        sum = hn::Add(sum, q);
        hn::StoreU(hn::DemoteTo(di8, q), di8, qx + t * K + b * kQK + j);
      }
      dx[t * nb + b] = amax / 127.0f;
      sx[t * nb + b] = hn::GetLane(hn::SumOfLanes(di, sum));
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
      __builtin_prefetch(blk + kPrefetchBytes);
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
  static constexpr int kVecs = 8;  // 64-byte vectors of quants a block
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
    KINFER_UNROLL for (int j = 0; j < F::kVecs; ++j)
        __builtin_prefetch(qb + kPrefetchBytes + 64 * j);
    __m512i w[8];
    F::Unpack(qb, w);
    const __m512 dw =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + b * kPackRows)));
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      const int8_t* xb = a.qx + c * K + b * kQK;
      __m512i is[A];
      is[0] = _mm512_set1_epi32(-F::kCorr * a.sx[c * nb + b]);
      KINFER_UNROLL for (int i = 1; i < A; ++i) is[i] = _mm512_setzero_si512();
      KINFER_UNROLL for (int j = 0; j < 8; ++j) {
        int32_t xj;
        std::memcpy(&xj, xb + F::XOff(j), 4);
        is[j % A] = _mm512_dpbusd_epi32(is[j % A], w[j], _mm512_set1_epi32(xj));
      }
      KINFER_UNROLL for (int i = 1; i < A; ++i) is[0] = _mm512_add_epi32(is[0], is[i]);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[0]),
                               _mm512_mul_ps(dw, _mm512_set1_ps(a.dx[c * nb + b])), acc[c]);
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

// Stored (unpacked) rows: few tokens unpack each block in registers (Q8Rows8); more tokens
// pack 16 rows at a time into a group and run the packed kernel over it.
template <class F, class P>
KINFER_VNNI void Q8RowsT(const TensorView& w, const ActQ8& act, int64_t T, float* y,
                         int64_t row_begin, int64_t row_end) {
  const int64_t O = w.rows(), K = w.cols(), nb = K / kQK;
  const size_t row_bytes = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data);
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
  thread_local std::vector<uint8_t> pq;
  thread_local std::vector<uint16_t> ps;
  const size_t qbytes = static_cast<size_t>(nb * P::kVecs * 64);
  if (pq.size() < qbytes) pq.resize(qbytes);
  if (ps.size() < static_cast<size_t>(nb * kPackRows))
    ps.resize(static_cast<size_t>(nb * kPackRows));
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
    case DType::kQ8_0:
      return Q8RowsT<IntQ8_0, PackQ8_0>(w, act, T, y, row_begin, row_end);
    default:
      return Q8RowsT<IntQ4_0, PackQ4_0>(w, act, T, y, row_begin, row_end);
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
  return kHaveQ8Path && (t == DType::kQ8_0 || t == DType::kQ4_0 || IsPacked(t)) && K % kQK == 0;
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(DotF32Impl);
HWY_EXPORT(AddImpl);
HWY_EXPORT(ArgMaxImpl);
HWY_EXPORT(SumF32Impl);
HWY_EXPORT(DequantizeRowImpl);
HWY_EXPORT(MatMulRowsImpl);
HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(RopeImpl);
HWY_EXPORT(AttendHeadsImpl);
HWY_EXPORT(UsesQ8ActivationsImpl);
HWY_EXPORT(QuantizeQ8Impl);
HWY_EXPORT(MatMulQ8RowsImpl);

float DotF32(const float* a, const float* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32Impl)(a, b, n);
}

void Add(float* y, const float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(AddImpl)(y, x, n); }

int64_t ArgMax(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(ArgMaxImpl)(x, n); }

float SumF32(const float* a, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumF32Impl)(a, n); }

void DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowImpl)(t, src, dst, n);
}

void DequantizeMatrixRow(const TensorView& w, int64_t r, float* dst) {
  if (!IsPacked(w.dtype)) return DequantizeRow(w.dtype, w.row(r), dst, w.cols());
  thread_local std::vector<uint8_t> blocks;
  const DType stored = StoredTypeOf(w.dtype);
  const size_t n = *RowBytes(stored, w.cols());
  if (blocks.size() < n) blocks.resize(n);
  UnpackRow(w, r, blocks.data());
  DequantizeRow(stored, blocks.data(), dst, w.cols());
}

bool MatMulUsesQ8Activations(DType t, int64_t cols) {
  return HWY_DYNAMIC_DISPATCH(UsesQ8ActivationsImpl)(t, cols);
}

void MatMul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const MatMulJob job{&w, x, y};
  MatMulMany(std::span<const MatMulJob>(&job, 1), n_tokens, pool);
}

void MatMulMany(std::span<const MatMulJob> jobs, int64_t n_tokens, ThreadPool& pool) {
  constexpr size_t kMaxJobs = 4;
  KINFER_CHECK(jobs.size() <= kMaxJobs && "MatMulMany: too many jobs");
  if (n_tokens <= 0 || jobs.empty()) return;
  // Per job: whether it runs on 8-bit activations, and their buffers. Jobs that share x and
  // its width share one quantization (q/k/v, gate/up). The calling thread quantizes; workers
  // read through plain pointers (inside a task, a thread_local would name the worker's own).
  struct Act {
    bool q8 = false;
    const int8_t* qx = nullptr;
    const float* dx = nullptr;
    const int32_t* sx = nullptr;
  };
  thread_local std::vector<int8_t> qx_buf[kMaxJobs];
  thread_local std::vector<float> dx_buf[kMaxJobs];
  thread_local std::vector<int32_t> sx_buf[kMaxJobs];
  Act act[kMaxJobs];
  int64_t total_rows = 0, work = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const TensorView& w = *jobs[j].w;
    const int64_t in = w.cols();
    total_rows += w.rows();
    work += w.rows() * in * n_tokens;
    if (!MatMulUsesQ8Activations(w.dtype, in)) continue;
    act[j].q8 = true;
    bool shared = false;
    for (size_t i = 0; i < j && !shared; ++i) {
      if (act[i].q8 && jobs[i].x == jobs[j].x && jobs[i].w->cols() == in) {
        act[j] = act[i];
        shared = true;
      }
    }
    if (shared) continue;
    const size_t n = static_cast<size_t>(n_tokens * in), nb = n / kQK;
    if (qx_buf[j].size() < n) qx_buf[j].resize(n);
    if (dx_buf[j].size() < nb) dx_buf[j].resize(nb);
    if (sx_buf[j].size() < nb) sx_buf[j].resize(nb);
    HWY_DYNAMIC_DISPATCH(QuantizeQ8Impl)
    (jobs[j].x, n_tokens, in, qx_buf[j].data(), dx_buf[j].data(), sx_buf[j].data());
    act[j].qx = qx_buf[j].data();
    act[j].dx = dx_buf[j].data();
    act[j].sx = sx_buf[j].data();
  }
  auto* f32_rows = HWY_DYNAMIC_DISPATCH(MatMulRowsImpl);
  auto* q8_rows = HWY_DYNAMIC_DISPATCH(MatMulQ8RowsImpl);
  // Rows [begin, end) of the jobs' rows laid end to end.
  auto rows = [&](int64_t begin, int64_t end) {
    int64_t first = 0;
    for (size_t j = 0; j < jobs.size() && first < end; ++j) {
      const TensorView& w = *jobs[j].w;
      const int64_t lo = std::max(begin, first) - first;
      const int64_t hi = std::min(end, first + w.rows()) - first;
      if (lo < hi) {
        if (act[j].q8) {
          q8_rows(w, act[j].qx, act[j].dx, act[j].sx, n_tokens, jobs[j].y, lo, hi);
        } else {
          f32_rows(w, jobs[j].x, n_tokens, jobs[j].y, lo, hi);
        }
      }
      first += w.rows();
    }
  };
  // Below this many multiply-adds, waking the other threads costs more than it saves.
  constexpr int64_t kMinParallelWork = 1 << 15;
  if (work < kMinParallelWork || pool.num_threads() == 1) {
    rows(0, total_rows);
  } else {
    pool.ParallelFor(total_rows, rows, 16);
  }
}

void MatMulQ8Ref(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  const int64_t out = w.rows(), K = w.cols(), nb = K / kQK;
  const DType stored = StoredTypeOf(w.dtype);
  std::vector<uint8_t> unpacked(IsPacked(w.dtype) ? *RowBytes(stored, K) : 0);
  std::vector<int8_t> qx(static_cast<size_t>(K));
  std::vector<float> dx(static_cast<size_t>(nb));
  std::vector<int32_t> sx(static_cast<size_t>(nb));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * kQK;
      float amax = 0.0f;
      for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(xb[i]));
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      int32_t s = 0;
      for (int i = 0; i < kQK; ++i) {
        const int q = static_cast<int>(std::nearbyint(xb[i] * id));
        qx[static_cast<size_t>(b * kQK + i)] = static_cast<int8_t>(q);
        s += q;
      }
      dx[static_cast<size_t>(b)] = amax / 127.0f;
      sx[static_cast<size_t>(b)] = s;
    }
    for (int64_t o = 0; o < out; ++o) {
      const uint8_t* row = w.row(o);
      if (!unpacked.empty()) {
        UnpackRow(w, o, unpacked.data());
        row = unpacked.data();
      }
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t isum = 0;
        float dw;
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
      y[t * out + o] = acc;
    }
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, n, out);
}

void Rope(float* x, int64_t heads, int64_t head_dim, int64_t rot, const float* cos,
          const float* sin, bool interleaved) {
  HWY_DYNAMIC_DISPATCH(RopeImpl)(x, heads, head_dim, rot, cos, sin, interleaved);
}

void AttendHead(const float* q, int64_t head_dim, const PagedKvView& kv, int64_t lo, int64_t hi,
                float scale, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHeadsImpl)(q, 1, head_dim, kv, lo, hi, scale, scores, out);
}

void AttendHeads(const float* q, int64_t heads, int64_t head_dim, const PagedKvView& kv, int64_t lo,
                 int64_t hi, float scale, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHeadsImpl)(q, heads, head_dim, kv, lo, hi, scale, scores, out);
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
