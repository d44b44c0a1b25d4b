// The f32 vector basics against double-precision references, odd sizes and tails included.
#include "kernels/vector_ops.h"

#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace kinfer::kernels
