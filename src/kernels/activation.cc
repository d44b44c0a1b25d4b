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

#include <cstring>

#include "kernels/activation.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

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

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(SiluMulImpl);

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, n, out);
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
