// Rotary embedding against the scalar rotation in double precision, both pair layouts.
#include "kernels/rope.h"

#include <gtest/gtest.h>

#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

TEST(Rope, MatchesScalarRotationInBothLayouts) {
  for (bool interleaved : {false, true}) {
    for (int64_t hd : {8, 64, 100}) {
      for (int64_t rot : {hd, hd / 2}) {
        const int64_t heads = 3, half = rot / 2;
        auto x = Random(static_cast<size_t>(heads * hd), 7);
        auto c = Random(static_cast<size_t>(half), 8), s = Random(static_cast<size_t>(half), 9);
        std::vector<float> got = x;
        Rope(got.data(), heads, hd, rot, c.data(), s.data(), interleaved);
        for (int64_t h = 0; h < heads; ++h) {
          const float* v = x.data() + h * hd;
          for (int64_t i = 0; i < half; ++i) {
            int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
            double ra = static_cast<double>(v[a]) * c[i] - static_cast<double>(v[b]) * s[i];
            double rb = static_cast<double>(v[b]) * c[i] + static_cast<double>(v[a]) * s[i];
            ASSERT_NEAR(got[h * hd + a], ra, 1e-6);
            ASSERT_NEAR(got[h * hd + b], rb, 1e-6);
          }
          for (int64_t i = rot; i < hd; ++i) ASSERT_EQ(got[h * hd + i], v[i]);
        }
      }
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
