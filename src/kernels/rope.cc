// Rotary position embedding, one source per SIMD target.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/rope.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "kernels/internal/simd-inl.h"
// clang-format on

#include "kernels/rope.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

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

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(RopeImpl);

void Rope(float* x, int64_t heads, int64_t head_dim, int64_t rot, const float* cos,
          const float* sin, bool interleaved) {
  HWY_DYNAMIC_DISPATCH(RopeImpl)(x, heads, head_dim, rot, cos, sin, interleaved);
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
