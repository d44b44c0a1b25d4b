// MatMul against a double-precision dot over the reference dequantization (and the 8-bit path
// against its scalar statement, bit for bit), every weight type and SIMD target, odd sizes.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/matmul_q8.h"
#include "kernels/quant.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

// Every type, odd row counts, token counts on both sides of the fused/panel switch, against
// a double-precision dot over the reference dequantization.
TEST(MatMul, MatchesDequantizedReference) {
  ThreadPool pool(3);
  ForEachTarget([&] {
    for (DType t : kAllTypes) {
      for (int64_t cols : ColsFor(t)) {
        for (int64_t rows : {1, 5, 67}) {
          auto bytes = RandomRows(t, rows, cols, 9);
          TensorView w = View(t, rows, cols, bytes);
          for (int64_t n : {1, 2, 3, 7, 17}) {
            auto x = Random(static_cast<size_t>(n * cols), 11);
            std::vector<float> y(static_cast<size_t>(n * rows));
            MatMul(w, x.data(), n, y.data(), pool);
            const bool q8 = MatMulUsesQ8Activations(t, cols);
            std::vector<float> yq8;
            if (q8) {  // the 8-bit path: its scalar statement, bit for bit
              yq8.resize(y.size());
              MatMulQ8Ref(w, x.data(), n, yq8.data());
              for (size_t i = 0; i < y.size(); ++i) {
                ASSERT_EQ(y[i], yq8[i])
                    << DTypeName(t) << " rows " << rows << " n " << n << " " << i;
              }
            }
            std::vector<float> row(static_cast<size_t>(cols));
            for (int64_t o = 0; o < rows; ++o) {
              DequantizeRowRef(t, w.row(o), row.data(), cols);
              for (int64_t k = 0; k < n; ++k) {
                double ref = 0, mag = 0, q8_bound = 0;
                for (int64_t i = 0; i < cols; ++i) {
                  ref += static_cast<double>(row[i]) * x[k * cols + i];
                  mag += std::fabs(static_cast<double>(row[i]) * x[k * cols + i]);
                }
                if (q8) {
                  // Rounding x to 8 bits moves each element by at most half a step, amax / 254.
                  for (int64_t b = 0; b < cols; b += 32) {
                    double amax = 0, wsum = 0;
                    for (int64_t i = b; i < b + 32; ++i) {
                      amax = std::max(amax, std::fabs(static_cast<double>(x[k * cols + i])));
                      wsum += std::fabs(static_cast<double>(row[i]));
                    }
                    q8_bound += amax / 254 * wsum;
                  }
                }
                ASSERT_NEAR(y[k * rows + o], ref, 1e-5 * mag + 1e-6 + q8_bound * (1 + 1e-5))
                    << DTypeName(t) << " rows " << rows << " cols " << cols << " n " << n;
              }
            }
          }
        }
      }
    }
  });
}

// A token's outputs are bit-identical whatever else is in the call and however many threads
// share it: alone, in a batch of 2..130 (fused and panel paths), at 1, 2 or 3 threads.
TEST(MatMul, IsBatchAndThreadInvariant) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  ForEachTarget([&] {
    for (DType t : kAllTypes) {
      const int64_t cols = ColsFor(t).back(), rows = 37;
      auto bytes = RandomRows(t, rows, cols, 21);
      TensorView w = View(t, rows, cols, bytes);
      const int64_t max_n = 130;  // over the panel path's token block (96 or 48)
      auto x = Random(static_cast<size_t>(max_n * cols), 23);
      std::vector<float> alone(static_cast<size_t>(max_n * rows));
      for (int64_t k = 0; k < max_n; ++k) {
        MatMul(w, x.data() + k * cols, 1, alone.data() + k * rows, pool1);
      }
      for (int64_t n : {2, 3, 4, 5, 6, 7, 12, 40, 130}) {
        for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
          // Tokens [max_n - n, max_n): the last token sits at a different place in each batch.
          std::vector<float> y(static_cast<size_t>(n * rows));
          MatMul(w, x.data() + (max_n - n) * cols, n, y.data(), *pool);
          for (int64_t k = 0; k < n; ++k) {
            for (int64_t o = 0; o < rows; ++o) {
              ASSERT_EQ(y[k * rows + o], alone[(max_n - n + k) * rows + o])
                  << DTypeName(t) << " n " << n << " threads " << pool->num_threads();
            }
          }
        }
      }
    }
  });
}

// Several matmuls in one region give bit for bit what separate MatMul calls give, with shared
// and distinct inputs and mixed types (8-bit and f32 activation paths side by side).
TEST(MatMul, ManyEqualsSeparateMatMuls) {
  ThreadPool pool(2);
  ForEachTarget([&] {
    const int64_t cols = 96;
    const DType types[] = {DType::kQ8_0, DType::kQ4_0, DType::kF16};
    const int64_t rows[] = {37, 5, 70};
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<TensorView> views;
    for (int j = 0; j < 3; ++j) bytes.push_back(RandomRows(types[j], rows[j], cols, 40 + j));
    for (int j = 0; j < 3; ++j) views.push_back(View(types[j], rows[j], cols, bytes[j]));
    for (int64_t n : {1, 3, 9}) {
      auto x1 = Random(static_cast<size_t>(n * cols), 50),
           x2 = Random(static_cast<size_t>(n * cols), 51);
      const float* xs[] = {x1.data(), x1.data(), x2.data()};
      std::vector<std::vector<float>> want(3), got(3);
      std::vector<MatMulJob> jobs;
      for (int j = 0; j < 3; ++j) {
        want[j].resize(static_cast<size_t>(n * rows[j]));
        got[j].resize(static_cast<size_t>(n * rows[j]));
        MatMul(views[j], xs[j], n, want[j].data(), pool);
        jobs.push_back({&views[j], xs[j], got[j].data()});
      }
      MatMulMany(jobs, n, pool);
      for (int j = 0; j < 3; ++j) ASSERT_EQ(got[j], want[j]) << "job " << j << " n " << n;
    }
  });
}

}  // namespace
}  // namespace kinfer::kernels
