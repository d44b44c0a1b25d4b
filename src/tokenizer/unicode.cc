#include "tokenizer/unicode.h"

#include <array>
#include <cstdlib>

#include <utf8proc.h>

namespace kinfer::tokenizer {

Utf8Char DecodeUtf8(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  const size_t avail = s.size() - pos;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) return {b0, 1, true};
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // the valid range of the second byte
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kReplacementChar, 1, false};
  }
  int i = 1;
  for (; i <= need; ++i) {
    if (static_cast<size_t>(i) >= avail) return {kReplacementChar, i, false};
    const uint8_t b = p[i];
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) return {kReplacementChar, i, false};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1, true};
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(char32_t cp) {
  std::string s;
  AppendUtf8(cp, &s);
  return s;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Char c = DecodeUtf8(s, i);
    if (!c.valid) return false;
    i += c.len;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    Utf8Char c = DecodeUtf8(s, i);
    if (c.valid) {
      out.append(s.substr(i, c.len));
    } else {
      AppendUtf8(kReplacementChar, &out);
    }
    i += c.len;
  }
  return out;
}

void Utf8Stream::Push(std::string_view bytes, std::string* out) {
  pending_.append(bytes);
  size_t i = 0;
  while (i < pending_.size()) {
    const uint8_t b = static_cast<uint8_t>(pending_[i]);
    if (b < 0x80) {
      out->push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    Utf8Char c = DecodeUtf8(pending_, i);
    if (!c.valid && i + c.len == pending_.size() && Utf8SeqLen(b) > c.len) {
      // A valid prefix cut short by the end of what we have: the next bytes decide.
      break;
    }
    if (c.valid) {
      out->append(pending_, i, c.len);
    } else {
      AppendUtf8(kReplacementChar, out);
    }
    i += c.len;
  }
  pending_.erase(0, i);
}

void Utf8Stream::Finish(std::string* out) {
  if (!pending_.empty()) {
    // What is left is one truncated sequence: a single maximal invalid subpart.
    AppendUtf8(kReplacementChar, out);
    pending_.clear();
  }
}

namespace {

struct ByteMaps {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // code points used are below 256 + 68
  ByteMaps() {
    from_cp.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMaps& Maps() {
  static const ByteMaps maps;
  return maps;
}

// Code point ranges whose characters are NFC-stable (quick check Yes, combining class 0, never
// the second half of a composition), so a run of them needs no normalization.
bool NfcStable(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x2FF) || (cp >= 0x400 && cp <= 0x482) ||
         (cp >= 0x48A && cp <= 0x52F) || (cp >= 0x3000 && cp <= 0x3029) ||
         (cp >= 0x3030 && cp <= 0x303F) || (cp >= 0x3041 && cp <= 0x3096) ||
         (cp >= 0x30A1 && cp <= 0x30FA) || (cp >= 0x30FC && cp <= 0x30FF) ||
         (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
         (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xFF01 && cp <= 0xFFEF) ||
         (cp >= 0x1F300 && cp <= 0x1FAFF);
}

void MapWithUtf8proc(std::string_view s, int options, std::string* out) {
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) {
    out->append(s);  // only invalid UTF-8 fails, and callers pass valid text
  } else {
    out->append(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  }
  std::free(dst);
}

}  // namespace

char32_t ByteToUnicode(uint8_t b) { return Maps().to_cp[b]; }

int UnicodeToByte(char32_t cp) {
  if (cp >= Maps().from_cp.size()) return -1;
  return Maps().from_cp[cp];
}

std::string Normalize(std::string_view s, NormalizationForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalizationForm::kNfc:
      options |= UTF8PROC_COMPOSE;
      break;
    case NormalizationForm::kNfd:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case NormalizationForm::kNfkc:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case NormalizationForm::kNfkd:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    // Copy ASCII up to the last ASCII character before the next non-ASCII run: that one may be
    // the base of a composition, so it goes with the run.
    size_t j = i;
    while (j < s.size() && static_cast<uint8_t>(s[j]) < 0x80) ++j;
    if (j == s.size()) {
      out.append(s.substr(i));
      break;
    }
    size_t run_start = j > i ? j - 1 : j;
    out.append(s.substr(i, run_start - i));
    size_t k = j;
    bool stable = form == NormalizationForm::kNfc;
    while (k < s.size() && static_cast<uint8_t>(s[k]) >= 0x80) {
      Utf8Char c = DecodeUtf8(s, k);
      if (stable && !NfcStable(c.cp)) stable = false;
      k += c.len;
    }
    const std::string_view run = s.substr(run_start, k - run_start);
    if (stable) {
      out.append(run);
    } else {
      MapWithUtf8proc(run, options, &out);
    }
    i = k;
  }
  return out;
}

std::string ToLowerUnicode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
      ++i;
      continue;
    }
    Utf8Char c = DecodeUtf8(s, i);
    AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c.cp))), &out);
    i += c.len;
  }
  return out;
}

std::string StripMarks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    Utf8Char c = DecodeUtf8(s, i);
    if (utf8proc_category(static_cast<utf8proc_int32_t>(c.cp)) != UTF8PROC_CATEGORY_MN) {
      out.append(s.substr(i, c.len));
    }
    i += c.len;
  }
  return out;
}

bool IsWhitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool IsAlphanumeric(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

bool IsNumeric(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}

bool IsPunctuation(char32_t cp) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool IsControl(char32_t cp) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_CC && cat <= UTF8PROC_CATEGORY_CO;
}

bool IsChineseChar(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace kinfer::tokenizer
