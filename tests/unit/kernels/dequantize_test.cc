// Vector dequantization against the scalar reference (quant.h), on every SIMD target.
#include "kernels/dequantize.h"

#include <gtest/gtest.h>

#include "kernels/quant.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

TEST(Dequantize, RowEqualsReferenceExactly) {
  ForEachTarget([&] {
    for (DType t : kAllTypes) {
      for (int64_t cols : ColsFor(t)) {
        auto bytes = RandomRows(t, 1, cols, 5);
        std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
        DequantizeRow(t, bytes.data(), got.data(), cols);
        DequantizeRowRef(t, bytes.data(), want.data(), cols);
        for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(got[i], want[i]) << DTypeName(t) << " " << i;
      }
    }
  });
}

}  // namespace
}  // namespace kinfer::kernels
