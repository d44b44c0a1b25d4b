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
    for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K,
                    DType::kQ5_K, DType::kQ6_K}) {
      const bool k = GetDTypeInfo(t).block_size == kQKK;
      for (int64_t cols : k ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 544}) {
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
              Q8Ref(w, x.data(), n, ref_s.data());
              Q8Ref(p, x.data(), n, ref_p.data());
              ASSERT_EQ(ref_p, ref_s);
              ASSERT_EQ(yp, ref_s);
            }
          }
        }
      }
      auto as_is = [](auto&& f) { f(); };
      ExpectJobsLaidEndToEndExact(t, k ? 256 : 96, {1, 9}, 62, pool3, as_is, as_is);
    }
  });
}

// Packed matrices share slabs of memory (pack.cc): each stays readable, page-aligned and its
// own while the matrices packed before and after it are freed and new ones take their place.
TEST(Pack, MatricesOutliveTheirSlabNeighbours) {
  const int64_t rows = 37, cols = 544;
  std::vector<std::vector<uint8_t>> bytes;
  for (uint32_t seed : {70, 71, 72, 73})
    bytes.push_back(RandomRows(DType::kQ4_0, rows, cols, seed));
  auto expect_same = [&](const PackedMatrix& m, const std::vector<uint8_t>& stored) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.view().data) % 4096, 0u);
    std::vector<uint8_t> row(*RowBytes(DType::kQ4_0, cols));
    for (int64_t r = 0; r < rows; ++r) {
      UnpackRow(m.view(), r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), stored.data() + r * row.size(), row.size())) << r;
    }
  };
  auto pack = [&](int i) { return PackMatrix(View(DType::kQ4_0, rows, cols, bytes[i])); };
  auto a = pack(0), b = pack(1), c = pack(2);
  a.reset();
  c.reset();
  auto d = pack(3);
  expect_same(*b, bytes[1]);
  expect_same(*d, bytes[3]);
  b.reset();
  expect_same(*d, bytes[3]);
}

// F16 and BF16 in the AMX tile layout (kF16x16, kBF16x16), where the CPU and kernel allow AMX:
// the stored rows back, and MatMul bit for bit what the stored matrix gives (itself on AMX
// tiles, held to the double reference in matmul_test.cc), for one token (the decode path) and
// for many (k blocks, accumulators saved between them), row ranges splitting groups of 16.
TEST(Pack, FloatTilesComputeExactlyAsStored) {
  if (MatMulActivationsFor(DType::kBF16, 32) != MatMulActivations::kBf16) {
    for (DType t : {DType::kF16, DType::kBF16}) {
      auto bytes = RandomRows(t, 16, 64, 70);
      EXPECT_FALSE(ShouldPack(View(t, 16, 64, bytes))) << DTypeName(t);
    }
    GTEST_SKIP() << "AMX bf16 is not usable here";
  }
  ThreadPool pool1(1), pool3(3);
  for (DType t : {DType::kF16, DType::kBF16}) {
    for (int64_t cols : {32, 96, 544, 2080}) {
      for (int64_t rows : {1, 5, 16, 37, 67}) {
        auto bytes = RandomRows(t, rows, cols, 71);
        const TensorView w = View(t, rows, cols, bytes);
        ASSERT_TRUE(ShouldPack(w));
        auto packed = PackMatrix(w);
        const TensorView& p = packed->view();
        ASSERT_EQ(p.dtype, *PackedTypeOf(t));
        ASSERT_EQ(MatMulActivationsFor(p.dtype, cols), MatMulActivations::kBf16);
        std::vector<uint8_t> stored(*RowBytes(t, cols));
        std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
          UnpackRow(p, r, stored.data());
          ASSERT_EQ(0, std::memcmp(stored.data(), w.row(r), stored.size())) << r;
          DequantizeMatrixRow(p, r, got.data());
          DequantizeRowRef(t, w.row(r), want.data(), cols);
          ASSERT_EQ(got, want) << DTypeName(t) << " row " << r;
        }
        for (int64_t n : {1, 2, 7, 16, 17, 33, 40}) {
          auto x = Random(static_cast<size_t>(n * cols), 72);
          std::vector<float> ys(static_cast<size_t>(n * rows)), yp(ys.size());
          MatMul(w, x.data(), n, ys.data(), pool1);
          for (ThreadPool* pool : {&pool1, &pool3}) {
            MatMul(p, x.data(), n, yp.data(), *pool);
            ASSERT_EQ(yp, ys) << DTypeName(t) << " rows " << rows << " cols " << cols << " n " << n
                              << " threads " << pool->num_threads();
          }
        }
      }
    }
    // A packed job after a stored one of 37 rows: its rows start mid-group in the region.
    const int64_t cols = 544;
    auto b1 = RandomRows(t, 37, cols, 73), b2 = RandomRows(t, 70, cols, 74);
    const TensorView w1 = View(t, 37, cols, b1), w2 = View(t, 70, cols, b2);
    auto p2 = PackMatrix(w2);
    for (int64_t n : {1, 9}) {
      auto x = Random(static_cast<size_t>(n * cols), 75);
      std::vector<float> want1(static_cast<size_t>(n * 37)), want2(static_cast<size_t>(n * 70));
      MatMul(w1, x.data(), n, want1.data(), pool1);
      MatMul(w2, x.data(), n, want2.data(), pool1);
      std::vector<float> got1(want1.size()), got2(want2.size());
      const MatMulJob jobs[] = {{&w1, x.data(), got1.data()}, {&p2->view(), x.data(), got2.data()}};
      MatMulMany(jobs, n, pool3);
      ASSERT_EQ(got1, want1) << n;
      ASSERT_EQ(got2, want2) << n;
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
