// The sampler's vector helpers against scalar scans, on every SIMD target.
#include "kernels/sampling.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

// ArgMax against a scalar scan for the first largest value: odd sizes, ties planted before
// and after the vector body, NaNs skipped.
TEST(Sampling, ArgMaxIsTheFirstLargest) {
  ForEachTarget([&] {
    for (int64_t n : {1, 2, 7, 16, 63, 64, 65, 151936}) {
      for (int trial = 0; trial < 4; ++trial) {
        auto x = Random(static_cast<size_t>(n), 80 + static_cast<uint32_t>(trial));
        if (trial >= 1 && n > 3) {  // ties: the same maximum at two places
          const float top = 10.0f;
          x[static_cast<size_t>(n / 3)] = top;
          x[static_cast<size_t>(n - 1)] = top;
        }
        if (trial == 3) x[0] = std::nanf("");
        int64_t want = -1;
        for (int64_t i = 0; i < n; ++i) {
          if (!std::isnan(x[i]) && (want < 0 || x[i] > x[want])) want = i;
        }
        if (want < 0) want = 0;  // nothing but NaN
        ASSERT_EQ(ArgMax(x.data(), n), want) << n << " trial " << trial;
      }
    }
  });
}

}  // namespace
}  // namespace kinfer::kernels
