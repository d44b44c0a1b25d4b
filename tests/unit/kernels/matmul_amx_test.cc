// The AVX-512 decode path for BF16/F16 weights (matmul_amx.cc) against the AMX tile path, bit for
// bit: a token's outputs must not depend on how many tokens share the call (ops.h), and the two
// paths split the work at kAmxVectorMaxTokens. Skipped where AMX bf16 is not usable (the vector
// path is only ever run where the tiles are).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/internal/matmul_paths.h"
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

// Values over a wide range of magnitudes (products that underflow, sums that cancel), with
// zeros of both signs and, in f16, subnormals.
std::vector<float> WideValues(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t kind = rng() % 16;
    if (kind == 0) {
      v[i] = (rng() & 1) ? -0.0f : 0.0f;
    } else if (kind == 1) {
      v[i] = std::ldexp(normal(rng), -20);  // f16 subnormal; tiny products
    } else if (kind == 2) {
      v[i] = std::ldexp(normal(rng), static_cast<int>(rng() % 20));
    } else if (kind == 3 && i > 0) {
      v[i] = -v[i - 1];  // a pair that cancels
    } else {
      v[i] = normal(rng);
    }
  }
  return v;
}

std::vector<uint8_t> WideRows(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  const auto v = WideValues(static_cast<size_t>(rows * cols), seed);
  std::vector<uint8_t> bytes(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = t == DType::kF16 ? Fp32ToFp16(v[i]) : Fp32ToBf16(v[i]);
    std::memcpy(&bytes[i * 2], &h, 2);
  }
  return bytes;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The vector path alone for 1-5 and 16 tokens (its groups of up to 4), and the dispatch up to
// one past the switch; F16 and BF16, stored and packed, odd row counts, row ranges that split
// groups of 16 (as threads do), values of wide range with zeros of both signs: the tile path's
// bits.
TEST(AmxBf16, VectorPathGivesTheTilesBits) {
  if (!internal::UsesAmxBf16(DType::kBF16, 32)) GTEST_SKIP() << "AMX bf16 is not usable here";
  for (DType t : {DType::kF16, DType::kBF16}) {
    for (int64_t cols : {32, 96, 544, 2080}) {
      for (int64_t rows : {1, 5, 16, 37, 67}) {
        auto bytes = WideRows(t, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
        const TensorView stored = View(t, rows, cols, bytes);
        auto packed = PackMatrix(stored);
        for (const TensorView* w : {&stored, &packed->view()}) {
          for (int64_t n = 1; n <= 16; ++n) {
            if (n > std::max<int64_t>(5, internal::kAmxVectorMaxTokens + 1) && n != 16) continue;
            const auto x = WideValues(static_cast<size_t>(n * cols), static_cast<uint32_t>(n));
            std::vector<uint16_t> xb(internal::AmxActivationElements(n, cols));
            internal::ToBf16Activations(x.data(), n, cols, xb.data());
            std::vector<float> tile(static_cast<size_t>(n * rows));
            internal::AmxBf16TileRows(*w, xb.data(), n, tile.data(), 0, rows);
            for (int64_t split : {int64_t{0}, int64_t{7}, int64_t{16}, int64_t{23}}) {
              if (split > rows) continue;
              std::vector<float> vec(tile.size(), -1.0f);
              internal::AmxBf16VectorRows(*w, xb.data(), n, vec.data(), 0, split);
              internal::AmxBf16VectorRows(*w, xb.data(), n, vec.data(), split, rows);
              ASSERT_TRUE(SameBits(vec, tile))
                  << DTypeName(w->dtype) << " rows " << rows << " cols " << cols << " n " << n
                  << " split " << split;
              if (n <= internal::kAmxVectorMaxTokens + 1) {  // the dispatch itself
                std::vector<float> y(tile.size(), -1.0f);
                internal::AmxBf16Rows(*w, xb.data(), n, y.data(), 0, split);
                internal::AmxBf16Rows(*w, xb.data(), n, y.data(), split, rows);
                ASSERT_TRUE(SameBits(y, tile)) << DTypeName(w->dtype) << " n " << n;
              }
            }
          }
        }
      }
    }
  }
}

// Through MatMul: one token alone (the vector path) and inside batches that take the tiles give
// the same bits, at 1 and 3 threads, on the packed matrix the model runs.
TEST(AmxBf16, DecodeTokenMatchesBatchedToken) {
  if (!internal::UsesAmxBf16(DType::kBF16, 32)) GTEST_SKIP() << "AMX bf16 is not usable here";
  ThreadPool pool1(1), pool3(3);
  for (DType t : {DType::kF16, DType::kBF16}) {
    const int64_t rows = 83, cols = 1056;
    auto bytes = WideRows(t, rows, cols, 5);
    auto packed = PackMatrix(View(t, rows, cols, bytes));
    const TensorView& w = packed->view();
    const int64_t max_n = 40;
    const auto x = WideValues(static_cast<size_t>(max_n * cols), 6);
    std::vector<float> alone(static_cast<size_t>(max_n * rows));
    for (int64_t k = 0; k < max_n; ++k) {
      MatMul(w, x.data() + k * cols, 1, alone.data() + k * rows, pool1);
    }
    for (int64_t n : {2, 3, 4, 5, 8, 17, 40}) {
      for (ThreadPool* pool : {&pool1, &pool3}) {
        std::vector<float> y(static_cast<size_t>(n * rows));
        MatMul(w, x.data() + (max_n - n) * cols, n, y.data(), *pool);
        ASSERT_EQ(
            0, std::memcmp(y.data(), alone.data() + (max_n - n) * rows, y.size() * sizeof(float)))
            << DTypeName(t) << " n " << n << " threads " << pool->num_threads();
      }
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
