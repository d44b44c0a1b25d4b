// Activation functions of the MLP, one source per SIMD target.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/activation.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
#include "kernels/internal/simd-inl.h"
// clang-format on

#include <cmath>
#include <cstring>

#include "kernels/activation.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

// out[i] = f(gate[i], up[i]) for a vector function f; the tail goes through the same vector code,
// so an element's value never depends on n.
template <typename F>
void GatedMul(const float* gate, const float* up, int64_t n, float* out, F f) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
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

void SiluMulImpl(const float* gate, const float* up, int64_t n, float* out) {
  const DF d;
  const auto one = hn::Set(d, 1.0f);
  GatedMul(gate, up, n, out, [&](auto g, auto u) {
    return hn::Mul(hn::Div(g, hn::Add(one, hn::Exp(d, hn::Neg(g)))), u);
  });
}

void GeluTanhMulImpl(const float* gate, const float* up, int64_t n, float* out) {
  const DF d;
  const auto half = hn::Set(d, 0.5f), one = hn::Set(d, 1.0f);
  const auto k0 = hn::Set(d, 0.7978845608028654f), k1 = hn::Set(d, 0.044715f);
  GatedMul(gate, up, n, out, [&](auto g, auto u) {
    const auto inner = hn::Mul(k0, hn::MulAdd(hn::Mul(k1, g), hn::Mul(g, g), g));
    return hn::Mul(hn::Mul(hn::Mul(half, g), hn::Add(one, hn::Tanh(d, inner))), u);
  });
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(GeluTanhMulImpl);

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, n, out);
}

void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(GeluTanhMulImpl)(gate, up, n, out);
}

void GeluTanhMulRef(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    out[i] = 0.5f * x * (1.0f + std::tanh(inner)) * up[i];
  }
}

void SoftCap(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
