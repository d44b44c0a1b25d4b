// Base64 against RFC 4648's test vectors (section 10) and Python's base64 module.
#include "core/base64.h"

#include <gtest/gtest.h>

namespace kinfer {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    EXPECT_EQ(Base64Decode(encoded), plain);
  }
}

TEST(Base64, DecodesUrlSafeUnpaddedAndWrappedText) {
  // Python: base64.urlsafe_b64encode(b"\xfb\xff\xfe") == b"-__-"
  EXPECT_EQ(Base64Decode("-__-"), std::string("\xfb\xff\xfe"));
  EXPECT_EQ(Base64Decode("+//+"), std::string("\xfb\xff\xfe"));
  EXPECT_EQ(Base64Decode("Zm9vYg"), "foob");
  EXPECT_EQ(Base64Decode("Zm9v\r\nYmFy"), "foobar");
  EXPECT_FALSE(Base64Decode("Zm9v!").has_value());
  EXPECT_FALSE(Base64Decode("Zm 9v").has_value());
}

TEST(Base64, RoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
}

}  // namespace
}  // namespace kinfer
