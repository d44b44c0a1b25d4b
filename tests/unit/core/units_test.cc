#include "core/units.h"

#include <gtest/gtest.h>

namespace kinfer {
namespace {

TEST(Units, ParseBytesReadsDecimalAndBinaryUnits) {
  EXPECT_EQ(ParseBytes("1000000"), 1000000);
  EXPECT_EQ(ParseBytes("512b"), 512);
  EXPECT_EQ(ParseBytes("2k"), 2000);
  EXPECT_EQ(ParseBytes("1KiB"), 1024);
  EXPECT_EQ(ParseBytes("512MiB"), int64_t{512} << 20);
  EXPECT_EQ(ParseBytes("1.5G"), 1500000000);
  EXPECT_EQ(ParseBytes("2GiB"), int64_t{2} << 30);
  EXPECT_EQ(ParseBytes("3gb"), 3000000000);
}

TEST(Units, ParseBytesRefusesWhatIsNotASize) {
  for (const char* bad : {"", "GiB", "-1", "12 parsecs", "1e30", "nan", "inf", "2TiB"}) {
    EXPECT_EQ(ParseBytes(bad), std::nullopt) << bad;
  }
}

TEST(Units, FormatBytesPicksTheLargestBinaryUnit) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(int64_t{3} << 20), "3.0 MiB");
  EXPECT_EQ(FormatBytes((int64_t{5} << 30) / 2), "2.5 GiB");
  EXPECT_EQ(FormatBytes(int64_t{2048} << 30), "2.0 TiB");
  EXPECT_EQ(FormatBytes(int64_t{4096} << 30), "4.0 TiB");  // no unit above TiB
}

}  // namespace
}  // namespace kinfer
