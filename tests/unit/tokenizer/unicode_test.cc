// UTF-8 repair and streaming against Python's bytes.decode('utf-8', 'replace') (the same
// maximal-subpart rule as Rust's from_utf8_lossy), GPT-2's byte map, normalization and the
// Oniguruma -> PCRE2 pattern translation.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <random>

#include "tokenizer/regex.h"

namespace kinfer::tokenizer {
namespace {

TEST(SanitizeUtf8, ReplacesMaximalInvalidSubpartsLikePython) {
  // Expected values from Python: b"...".decode("utf-8", "replace").
  EXPECT_EQ(SanitizeUtf8("\xe4\xbd"), "\uFFFD");
  EXPECT_EQ(SanitizeUtf8("\xc0\xaf"), "\uFFFD\uFFFD");
  EXPECT_EQ(SanitizeUtf8("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(SanitizeUtf8("\xf4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(SanitizeUtf8("\xf0\x9f\x98 x"), "\uFFFD x");
  EXPECT_EQ(SanitizeUtf8("abc\x80"
                         "def"),
            "abc\uFFFD"
            "def");
  EXPECT_EQ(SanitizeUtf8("\xe4\xbd\xa0\xe4"), "你\uFFFD");
  EXPECT_EQ(SanitizeUtf8("ok 你好 🦙"), "ok 你好 🦙");
}

TEST(Utf8Stream, AnyChunkingGivesTheWholeStringRepair) {
  const std::string bytes =
      "a\xe4\xbd\xa0\xe4\xbd"
      "b\xf0\x9f\xa6\x99\xff\xc3";
  const std::string want = SanitizeUtf8(bytes);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Utf8Stream s;
    std::string out;
    size_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = 1 + rng() % 3;
      std::string piece;
      s.Push(bytes.substr(pos, n), &piece);
      EXPECT_TRUE(IsValidUtf8(piece));
      out += piece;
      pos += n;
    }
    s.Finish(&out);
    EXPECT_EQ(out, want);
  }
}

TEST(ByteLevel, MapIsGpt2s) {
  EXPECT_EQ(EncodeUtf8(ByteToUnicode(' ')), "Ġ");
  EXPECT_EQ(EncodeUtf8(ByteToUnicode('\n')), "Ċ");
  EXPECT_EQ(EncodeUtf8(ByteToUnicode('A')), "A");
  for (int b = 0; b < 256; ++b) EXPECT_EQ(UnicodeToByte(ByteToUnicode(uint8_t(b))), b);
  EXPECT_EQ(UnicodeToByte(U'▁'), -1);
}

TEST(Normalize, NfcComposesAndLeavesStableTextAlone) {
  EXPECT_EQ(Normalize("e\u0301", NormalizationForm::kNfc), "é");
  EXPECT_EQ(Normalize("\u1100\u1161\u11a8", NormalizationForm::kNfc), "각");
  EXPECT_EQ(Normalize("\u212b", NormalizationForm::kNfc), "Å");
  EXPECT_EQ(Normalize("plain 你好 ascii", NormalizationForm::kNfc), "plain 你好 ascii");
  EXPECT_EQ(Normalize("ﬁ", NormalizationForm::kNfkc), "fi");
  EXPECT_EQ(Normalize("é", NormalizationForm::kNfd), "e\u0301");
}

TEST(RegexTranslation, WhitespaceIsUnicodeWhiteSpaceNotMongolianVowelSeparator) {
  auto re = Regex::Compile(R"(\s+)");
  ASSERT_TRUE(re.ok());
  EXPECT_EQ((*re)->FindAll("a \t\u3000b").size(), 1u);
  EXPECT_TRUE((*re)->FindAll("\u180e").empty());
  EXPECT_EQ((*re)->FindAll("\u0085").size(), 1u);
}

TEST(RegexTranslation, ClassesKnowCharactersNewerThanPcre2) {
  // U+1F77B (Unicode 15) is a symbol (So) to Oniguruma and utf8proc.
  auto re = Regex::Compile(R"(\p{S}+)");
  ASSERT_TRUE(re.ok());
  EXPECT_EQ((*re)->FindAll("\U0001F77B").size(), 1u);
}

TEST(Regex, BadPatternIsAnError) {
  auto re = Regex::Compile("(unclosed");
  ASSERT_FALSE(re.ok());
  EXPECT_EQ(re.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kinfer::tokenizer
