// Normalization layers against their formulas in double precision.
#include "kernels/norm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

TEST(Norm, RmsNormMatchesFormula) {
  auto x = Random(37, 3), w = Random(37, 4);
  std::vector<float> out(37);
  RmsNorm(x.data(), w.data(), 37, 1e-5f, out.data());
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  double scale = 1.0 / std::sqrt(ss / 37 + 1e-5);
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], x[i] * scale * w[i], 1e-5);
}

}  // namespace
}  // namespace kinfer::kernels
