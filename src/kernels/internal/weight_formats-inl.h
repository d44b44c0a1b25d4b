// The weight types MatMul and DequantizeRow read, as streams of f32 vectors (internal to
// src/kernels). Each format is a struct whose Each(row, u, f) calls f(offset, v) for the vectors
// of elements [u * Unit(), (u + 1) * Unit()) of a row, in element order, with exactly the values
// of DequantizeRowRef (same operations, same rounding). The panel path stores these vectors and
// the fused path multiplies them straight into the accumulators, so both see the same values in
// the same order.
//
// Include after <hwy/highway.h> in a file that foreach_target.h re-includes per target.

#if defined(KINFER_KERNELS_INTERNAL_WEIGHT_FORMATS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KINFER_KERNELS_INTERNAL_WEIGHT_FORMATS_INL_H_
#undef KINFER_KERNELS_INTERNAL_WEIGHT_FORMATS_INL_H_
#else
#define KINFER_KERNELS_INTERNAL_WEIGHT_FORMATS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/internal/simd-inl.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

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

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
