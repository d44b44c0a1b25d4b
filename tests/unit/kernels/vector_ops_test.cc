// The f32 vector basics against double-precision references, odd sizes and tails included.
#include "kernels/vector_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

TEST(VectorOps, DotF32MatchesDoubleReferenceForOddSizes) {
  for (int64_t n : {1, 3, 7, 8, 15, 16, 31, 33, 64, 100, 1023}) {
    auto a = Random(static_cast<size_t>(n), 1), b = Random(static_cast<size_t>(n), 2);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      mag += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    EXPECT_NEAR(DotF32(a.data(), b.data(), n), ref, 1e-6 * mag + 1e-7) << n;
  }
}

// One f32 add an element: the bits of the scalar sum, out of place and in place.
TEST(VectorOps, AddIsExactForOddSizes) {
  for (int64_t n : {1, 7, 16, 33, 1023}) {
    const auto a = Random(static_cast<size_t>(n), 3), b = Random(static_cast<size_t>(n), 4);
    std::vector<float> y(static_cast<size_t>(n)), acc = a;
    Add(y.data(), a.data(), b.data(), n);
    Add(acc.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(y[i], a[i] + b[i]) << n << " " << i;
      ASSERT_EQ(acc[i], a[i] + b[i]) << n << " " << i;
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
