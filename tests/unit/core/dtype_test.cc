// The f16 and bf16 conversions of core/dtype.h against IEEE rounding: every f16 value round-trips
// and ties go to even.
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace kinfer {
namespace {

TEST(DType, HalfConversionsRoundTripAndRoundToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Fp32ToFp16(f), h) << h;
  }
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie: to even
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie: to even (up)
  EXPECT_EQ(Fp32ToFp16(70000.0f), 0x7C00);                          // overflow to inf
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: to even
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(Bf16ToFp32(Fp32ToBf16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace kinfer
