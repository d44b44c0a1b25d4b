// Vector helpers of the sampler over a row of logits, one source per SIMD target.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sampling.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "kernels/internal/simd-inl.h"
// clang-format on

#include "kernels/sampling.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

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

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(ArgMaxImpl);

int64_t ArgMax(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(ArgMaxImpl)(x, n); }

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
