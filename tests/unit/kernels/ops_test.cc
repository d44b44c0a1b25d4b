// Kernels against plain scalar references (double accumulation) on random inputs, odd sizes
// and tails included.
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/quant.h"

namespace kinfer::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(Ops, DotF32MatchesDoubleReferenceForOddSizes) {
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

// Random Q8_0 / Q4_0 / Q4_K rows built from random bytes with sane scales.
std::vector<uint8_t> RandomBlocks(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  size_t bytes = *RowBytes(t, cols) * static_cast<size_t>(rows);
  std::vector<uint8_t> data(bytes);
  std::mt19937 rng(seed);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const size_t bb = GetDTypeInfo(t).block_bytes;
  for (size_t off = 0; off < bytes; off += bb) {
    uint16_t d = Fp32ToFp16(0.01f + 0.001f * static_cast<float>(rng() % 100));
    switch (t) {
      case DType::kQ8_0:
      case DType::kQ4_0: std::memcpy(&data[off], &d, 2); break;
      case DType::kQ4_K:
        std::memcpy(&data[off], &d, 2);
        std::memcpy(&data[off + 2], &d, 2);
        break;
      case DType::kQ6_K: std::memcpy(&data[off + bb - 2], &d, 2); break;
      default: break;
    }
  }
  return data;
}

TEST(Ops, MatMulMatchesDequantizedReference) {
  ThreadPool pool(3);
  for (DType t : {DType::kF32, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    for (int64_t rows : {1, 5, 67}) {
      const int64_t cols = 512;
      std::vector<uint8_t> bytes;
      std::vector<float> f32w;
      if (t == DType::kF32) {
        f32w = Random(static_cast<size_t>(rows * cols), 7);
      } else {
        bytes = RandomBlocks(t, rows, cols, 9);
      }
      TensorView w;
      w.dtype = t;
      w.ndim = 2;
      w.shape = {rows, cols, 0, 0};
      w.data = t == DType::kF32 ? static_cast<const void*>(f32w.data()) : bytes.data();
      w.nbytes = t == DType::kF32 ? f32w.size() * 4 : bytes.size();
      for (int64_t n : {1, 3, 17}) {
        auto x = Random(static_cast<size_t>(n * cols), 11);
        std::vector<float> y(static_cast<size_t>(n * rows));
        MatMul(w, x.data(), n, y.data(), pool);
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t o = 0; o < rows; ++o) {
          DequantizeRowRef(t, w.row(o), row.data(), cols);
          for (int64_t k = 0; k < n; ++k) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              ref += static_cast<double>(row[i]) * x[k * cols + i];
              mag += std::fabs(static_cast<double>(row[i]) * x[k * cols + i]);
            }
            ASSERT_NEAR(y[k * rows + o], ref, 1e-5 * mag + 1e-6)
                << DTypeName(t) << " rows " << rows << " n " << n;
          }
        }
        // Batch invariance: each token's row equals running that token alone.
        for (int64_t k = 0; k < n; ++k) {
          std::vector<float> single(static_cast<size_t>(rows));
          MatMul(w, x.data() + k * cols, 1, single.data(), pool);
          for (int64_t o = 0; o < rows; ++o) ASSERT_EQ(single[o], y[k * rows + o]);
        }
      }
    }
  }
}

TEST(Ops, RmsNormAndSiluMulMatchFormulas) {
  auto x = Random(37, 3), w = Random(37, 4);
  std::vector<float> out(37);
  RmsNorm(x.data(), w.data(), 37, 1e-5f, out.data());
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  double scale = 1.0 / std::sqrt(ss / 37 + 1e-5);
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], x[i] * scale * w[i], 1e-5);
  auto g = Random(37, 5), u = Random(37, 6);
  SiluMul(g.data(), u.data(), 37, out.data());
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-6);
}

TEST(Ops, HalfConversionsRoundTripAndRoundToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Fp32ToFp16(f), h) << h;
  }
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: to even
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie: to even (up)
  EXPECT_EQ(Fp32ToFp16(70000.0f), 0x7C00);  // overflow to inf
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: to even
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(Bf16ToFp32(Fp32ToBf16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace kinfer::kernels
