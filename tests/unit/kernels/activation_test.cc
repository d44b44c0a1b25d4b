// Activation functions against their formulas in double precision, tails included.
#include "kernels/activation.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

TEST(Activation, SiluMulMatchesFormulaWithTails) {
  for (int64_t n : {1, 5, 16, 37, 100}) {
    auto g = Random(static_cast<size_t>(n), 5, 4.0f), u = Random(static_cast<size_t>(n), 6);
    std::vector<float> out(static_cast<size_t>(n));
    SiluMul(g.data(), u.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      double gi = g[i];
      double want = gi / (1 + std::exp(-gi)) * u[i];
      ASSERT_NEAR(out[i], want, 1e-6 * (1 + std::fabs(want))) << n << " " << i;
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
