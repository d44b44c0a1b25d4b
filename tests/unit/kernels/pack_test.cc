// The packed weight layouts against the stored ones: same bytes back, same values, same MatMul
// results bit for bit.
#include "kernels/pack.h"

#include <gtest/gtest.h>

#include <cstring>

#include "kernels/dequantize.h"
#include "kernels/matmul.h"
#include "kernels/matmul_q8.h"
#include "kernels/quant.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

// The packed layouts (pack.h) against the stored one: unpacking gives the stored blocks back,
// rows dequantize to DequantizeRowRef's values, and MatMul and MatMulQ8Ref give bit for bit
// what they give on the stored matrix, on every target, at any batch and thread count, with
// row ranges that split a group of 16 (MatMulMany lays jobs end to end).
TEST(Pack, MatricesComputeExactlyAsStored) {
  ThreadPool pool1(1), pool3(3);
  ForEachTarget([&] {
    for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
      for (int64_t cols : {32, 96, 544}) {
        for (int64_t rows : {1, 5, 16, 37, 67}) {
          auto bytes = RandomRows(t, rows, cols, 60);
          const TensorView w = View(t, rows, cols, bytes);
          auto packed = PackMatrix(w);
          const TensorView& p = packed->view();
          ASSERT_EQ(p.dtype, *PackedTypeOf(t));
          std::vector<uint8_t> blocks(*RowBytes(t, cols));
          std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
          for (int64_t r = 0; r < rows; ++r) {
            UnpackRow(p, r, blocks.data());
            ASSERT_EQ(0, std::memcmp(blocks.data(), w.row(r), blocks.size())) << r;
            DequantizeMatrixRow(p, r, got.data());
            DequantizeRowRef(t, w.row(r), want.data(), cols);
            ASSERT_EQ(got, want) << DTypeName(t) << " row " << r;
          }
          for (int64_t n : {1, 2, 3, 6, 7, 17}) {
            auto x = Random(static_cast<size_t>(n * cols), 61);
            std::vector<float> ys(static_cast<size_t>(n * rows)), yp(ys.size());
            MatMul(w, x.data(), n, ys.data(), pool1);
            for (ThreadPool* pool : {&pool1, &pool3}) {
              MatMul(p, x.data(), n, yp.data(), *pool);
              ASSERT_EQ(yp, ys) << DTypeName(t) << " rows " << rows << " cols " << cols << " n "
                                << n << " threads " << pool->num_threads();
            }
            if (MatMulUsesQ8Activations(p.dtype, cols)) {
              std::vector<float> ref_s(ys.size()), ref_p(ys.size());
              MatMulQ8Ref(w, x.data(), n, ref_s.data());
              MatMulQ8Ref(p, x.data(), n, ref_p.data());
              ASSERT_EQ(ref_p, ref_s);
              ASSERT_EQ(yp, ref_s);
            }
          }
        }
      }
      // Jobs of 37 and 5 rows then the packed one: its rows start mid-group in the region.
      const int64_t cols = 96;
      auto b1 = RandomRows(t, 37, cols, 62), b2 = RandomRows(t, 5, cols, 63),
           b3 = RandomRows(t, 70, cols, 64);
      const TensorView w1 = View(t, 37, cols, b1), w2 = View(t, 5, cols, b2),
                       w3 = View(t, 70, cols, b3);
      auto p1 = PackMatrix(w1), p3 = PackMatrix(w3);
      for (int64_t n : {1, 9}) {
        auto x = Random(static_cast<size_t>(n * cols), 65);
        std::vector<float> want1(static_cast<size_t>(n * 37)), want2(static_cast<size_t>(n * 5)),
            want3(static_cast<size_t>(n * 70));
        MatMul(w1, x.data(), n, want1.data(), pool1);
        MatMul(w2, x.data(), n, want2.data(), pool1);
        MatMul(w3, x.data(), n, want3.data(), pool1);
        std::vector<float> got1(want1.size()), got2(want2.size()), got3(want3.size());
        const MatMulJob jobs[] = {{&p1->view(), x.data(), got1.data()},
                                  {&w2, x.data(), got2.data()},
                                  {&p3->view(), x.data(), got3.data()}};
        MatMulMany(jobs, n, pool3);
        ASSERT_EQ(got1, want1) << n;
        ASSERT_EQ(got2, want2) << n;
        ASSERT_EQ(got3, want3) << n;
      }
    }
  });
}

}  // namespace
}  // namespace kinfer::kernels
