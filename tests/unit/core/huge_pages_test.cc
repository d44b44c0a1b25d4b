#include "core/huge_pages.h"

#include <gtest/gtest.h>

#include <cstring>

namespace kinfer {
namespace {

TEST(HugePageMapping, IsAlignedWholePagesZeroedAndWritable) {
  for (size_t want : {size_t{1}, HugePageMapping::kPageBytes - 1, HugePageMapping::kPageBytes,
                      HugePageMapping::kPageBytes + 1, size_t{5} << 20}) {
    HugePageMapping m(want);
    SCOPED_TRACE(want);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data()) % HugePageMapping::kPageBytes, 0u);
    EXPECT_GE(m.size(), want);
    EXPECT_LT(m.size() - want, HugePageMapping::kPageBytes);
    EXPECT_EQ(m.size() % HugePageMapping::kPageBytes, 0u);
    EXPECT_EQ(m.data()[0], 0);
    EXPECT_EQ(m.data()[m.size() - 1], 0);
    std::memset(m.data(), 0x5a, m.size());
    EXPECT_EQ(m.data()[m.size() - 1], 0x5a);
  }
}

TEST(HugePageMapping, ZeroBytesStillMapsOnePage) {
  HugePageMapping m(0);
  EXPECT_EQ(m.size(), HugePageMapping::kPageBytes);
  m.data()[0] = 1;
  EXPECT_EQ(m.data()[0], 1);
}

}  // namespace
}  // namespace kinfer
