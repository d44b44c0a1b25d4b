// Dequantization of every supported ggml type against the gguf Python package's own
// dequantize, on random block bytes (tests/fixtures/quant, made by make_quant_fixtures.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/mapped_file.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "model/gguf.h"

namespace kinfer::model {
namespace {

class QuantFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantFixture, DequantizeMatchesGgufPackage) {
  const std::string dir = KINFER_FIXTURES_DIR "/quant/";
  auto g = GgufFile::Open(dir + GetParam() + ".gguf");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const GgufTensorInfo* t = (*g)->FindTensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(DTypeName(t->dtype), GetParam());
  auto ref = MappedFile::Open(dir + GetParam() + ".f32");
  ASSERT_TRUE(ref.ok());
  TensorView v = t->View();
  ASSERT_EQ(v.rows() * v.cols() * 4, static_cast<int64_t>((*ref)->size()));
  std::vector<float> want(static_cast<size_t>(v.numel())), got_ref(want.size()), got(want.size());
  std::memcpy(want.data(), (*ref)->data(), (*ref)->size());
  for (int64_t r = 0; r < v.rows(); ++r) {
    kernels::DequantizeRowRef(v.dtype, v.row(r), got_ref.data() + r * v.cols(), v.cols());
    kernels::DequantizeRow(v.dtype, v.row(r), got.data() + r * v.cols(), v.cols());
  }
  const bool plain = v.dtype == DType::kF16 || v.dtype == DType::kBF16;
  for (size_t i = 0; i < want.size(); ++i) {
    if (plain) {
      // Conversions are exact, bit for bit (signed zeros and subnormals included).
      uint32_t a, b;
      std::memcpy(&a, &got_ref[i], 4);
      std::memcpy(&b, &want[i], 4);
      ASSERT_EQ(a, b) << "element " << i;
    } else {
      // numpy may round d*q and the min's product separately; allow one float32 rounding.
      ASSERT_NEAR(got_ref[i], want[i], 2e-7f * std::max(1.0f, std::fabs(want[i])))
          << "element " << i;
    }
    ASSERT_EQ(got[i], got_ref[i]) << "optimized dequantize differs from the reference at " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantFixture,
                         ::testing::Values("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                           "Q4_K", "Q5_K", "Q6_K"));

}  // namespace
}  // namespace kinfer::model
