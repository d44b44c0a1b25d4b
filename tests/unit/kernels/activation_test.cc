// Activation functions against their formulas in double precision, tails included: SiluMul,
// and the GELU-tanh gate on every SIMD target this CPU has plus soft-capping (Gemma).
#include "kernels/activation.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <vector>

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

double GeluTanh(double x) {
  return 0.5 * x *
         (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

TEST(Activation, GeluTanhMulMatchesFormulaOnEveryTarget) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (int64_t n : {1, 7, 16, 33, 100, 2049}) {
      std::vector<float> g(static_cast<size_t>(n)), u(g.size()), out(g.size()), ref(g.size());
      for (size_t i = 0; i < g.size(); ++i) {
        g[i] = nd(rng);
        u[i] = nd(rng);
      }
      g[0] = -20.0f;  // far tails: tanh saturates to -1/+1
      if (n > 1) g[1] = 20.0f;
      GeluTanhMul(g.data(), u.data(), n, out.data());
      GeluTanhMulRef(g.data(), u.data(), n, ref.data());
      for (size_t i = 0; i < g.size(); ++i) {
        const double want = GeluTanh(g[i]) * u[i];
        ASSERT_NEAR(out[i], want, 1e-5 * std::max(1.0, std::fabs(want))) << n << " " << i;
        ASSERT_NEAR(ref[i], want, 1e-5 * std::max(1.0, std::fabs(want))) << n << " " << i;
      }
      // Batch invariance: an element's value does not depend on the row length around it.
      std::vector<float> one(1);
      for (size_t i = 0; i < g.size(); i += 13) {
        GeluTanhMul(&g[i], &u[i], 1, one.data());
        ASSERT_EQ(one[0], out[i]) << n << " " << i;
      }
      // In place (out aliases gate), as the decoder calls it.
      std::vector<float> inplace = g;
      GeluTanhMul(inplace.data(), u.data(), n, inplace.data());
      ASSERT_EQ(inplace, out);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Activation, SoftCapBoundsAndKeepsSmallValues) {
  std::vector<float> x = {0.0f, 0.01f, -0.5f, 3.0f, -100.0f, 1e6f};
  std::vector<float> want;
  for (float v : x) want.push_back(static_cast<float>(30.0 * std::tanh(v / 30.0)));
  SoftCap(x.data(), static_cast<int64_t>(x.size()), 30.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(x[i], want[i], 1e-5 * std::max(1.0f, std::fabs(want[i]))) << i;
    EXPECT_LE(std::fabs(x[i]), 30.0f);
  }
  EXPECT_NEAR(x[1], 0.01f, 1e-8);  // nearly the identity near 0
}

}  // namespace
}  // namespace kinfer::kernels
