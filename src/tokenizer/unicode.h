// UTF-8 and Unicode helpers shared by the tokenizers: decoding with the replacement rules that
// Python and Rust use, GPT-2's byte <-> code point map, normalization forms (utf8proc underneath)
// and the character classes that pre-tokenizers ask about.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kinfer::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// One decoded code point: `len` bytes were consumed. An invalid sequence consumes its maximal
// invalid subpart (Unicode 3.9, as Python's 'replace' and Rust's from_utf8_lossy do) and gives
// valid == false with cp == U+FFFD.
struct Utf8Char {
  char32_t cp = 0;
  int len = 0;
  bool valid = false;
};
Utf8Char DecodeUtf8(std::string_view s, size_t pos);

// The number of bytes of a valid UTF-8 sequence whose first byte is `lead`; 1 for bytes that
// cannot start one (so that loops over untrusted bytes always advance).
inline int Utf8SeqLen(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 1;
}

void AppendUtf8(char32_t cp, std::string* out);
std::string EncodeUtf8(char32_t cp);
bool IsValidUtf8(std::string_view s);

// `s` with every maximal invalid subpart replaced by U+FFFD: what `bytes.decode('utf-8',
// 'replace')` gives, so that text from outside compares with what Hugging Face tokenizers sees.
std::string SanitizeUtf8(std::string_view s);

// Turns a byte stream into valid UTF-8 text as early as possible: complete characters go out at
// once, invalid bytes become U+FFFD exactly where a whole-string lossy conversion would put
// them, and an unfinished sequence is held until the next bytes or Finish(). The concatenation
// of all outputs equals SanitizeUtf8 of all inputs.
class Utf8Stream {
 public:
  void Push(std::string_view bytes, std::string* out);
  void Finish(std::string* out);
  bool empty() const { return pending_.empty(); }

 private:
  std::string pending_;
};

// GPT-2's reversible map from the 256 byte values to printable code points ("Ġ" for ' ').
char32_t ByteToUnicode(uint8_t b);
// The byte that `cp` stands for, or -1 when `cp` is not in the map.
int UnicodeToByte(char32_t cp);

// Unicode normalization of valid UTF-8. Text that the form cannot change (ASCII) is returned
// without calling into utf8proc.
enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };
std::string Normalize(std::string_view s, NormalizationForm form);

// Full lowercase of each code point (simple mapping, as utf8proc gives it).
std::string ToLowerUnicode(std::string_view s);
// Removes combining marks (general category Mn), as Hugging Face's StripAccents does after NFD.
std::string StripMarks(std::string_view s);

// Character classes in the Rust sense that Hugging Face's pre-tokenizers use.
bool IsWhitespace(char32_t cp);    // char::is_whitespace (White_Space property)
bool IsAlphanumeric(char32_t cp);  // char::is_alphanumeric (L* or N*)
bool IsNumeric(char32_t cp);       // char::is_numeric (N*)
bool IsPunctuation(char32_t cp);   // P* general categories
bool IsControl(char32_t cp);       // Cc, Cf and the other C* categories
bool IsChineseChar(char32_t cp);   // the CJK blocks BERT treats as words of their own

}  // namespace kinfer::tokenizer
