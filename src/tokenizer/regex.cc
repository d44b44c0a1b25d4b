#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <map>
#include <mutex>

#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {

namespace {

// Unicode White_Space, which is what \s means to Oniguruma (Hugging Face's regex engine) and to
// Rust's char::is_whitespace. PCRE2's UCP \s also takes U+180E, so it is spelled out.
constexpr std::string_view kWhiteSpaceRanges =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Characters PCRE2's Unicode tables do not know yet (PCRE2 10.42 has Unicode 14) but utf8proc
// (Unicode 15) does, by general category ("Lo", "So", ...) and major class ("L", "S", ...), as
// class ranges. Hugging Face's Oniguruma knows them, so \p{S} must take them too.
class NewerUnicode {
 public:
  static const NewerUnicode& Get() {
    static const NewerUnicode instance;
    return instance;
  }
  const std::string& Ranges(const std::string& property) const {
    static const std::string kNone;
    auto it = ranges_.find(property);
    return it == ranges_.end() ? kNone : it->second;
  }

 private:
  NewerUnicode() {
    static const char* const kNames[] = {
        "Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
        "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    // Every character utf8proc knows; those PCRE2 calls unassigned are the newer ones.
    std::string all;
    all.reserve(1 << 20);
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
      if ((cp < 0xD800 || cp > 0xDFFF) &&
          utf8proc_category(static_cast<utf8proc_int32_t>(cp)) != UTF8PROC_CATEGORY_CN) {
        AppendUtf8(cp, &all);
      }
    }
    const char* pat = "\\p{Cn}+";
    int err;
    PCRE2_SIZE off;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (code == nullptr) return;
    const bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    std::map<std::string, std::vector<std::pair<char32_t, char32_t>>> found;
    size_t pos = 0;
    auto match = [&] {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(all.data());
      return jit ? pcre2_jit_match(code, subject, all.size(), pos, 0, md, nullptr)
                 : pcre2_match(code, subject, all.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    };
    while (pos < all.size() && match() > 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      for (size_t i = ov[0]; i < ov[1];) {
        Utf8Char c = DecodeUtf8(all, i);
        i += c.len;
        const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c.cp));
        const std::string name = kNames[cat];
        for (const std::string& key : {name, name.substr(0, 1)}) {
          auto& v = found[key];
          if (!v.empty() && v.back().second + 1 == c.cp) {
            v.back().second = c.cp;
          } else {
            v.emplace_back(c.cp, c.cp);
          }
        }
      }
      pos = ov[1] > pos ? ov[1] : pos + 1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    for (const auto& [key, list] : found) {
      std::string r;
      for (const auto& [a, b] : list) {
        r += fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(a));
        if (b != a) r += fmt::format("-\\x{{{:X}}}", static_cast<uint32_t>(b));
      }
      ranges_[key] = std::move(r);
    }
  }

  std::map<std::string, std::string> ranges_;
};

}  // namespace

std::string TranslatePattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  size_t class_start = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[i + 1];
      if (n == 's') {
        if (in_class) {
          out.append(kWhiteSpaceRanges);
        } else {
          out.append("[").append(kWhiteSpaceRanges).append("]");
        }
        ++i;
        continue;
      }
      if (n == 'S' && !in_class) {
        out.append("[^").append(kWhiteSpaceRanges).append("]");
        ++i;
        continue;
      }
      if (n == 'p' || n == 'P') {
        // \pL or \p{Name}: add the characters newer than PCRE2's tables.
        std::string name;
        size_t end = i + 2;
        if (end < pattern.size() && pattern[end] == '{') {
          const size_t close = pattern.find('}', end);
          if (close != std::string_view::npos) {
            name = std::string(pattern.substr(end + 1, close - end - 1));
            end = close + 1;
          }
        } else if (end < pattern.size()) {
          name = std::string(1, pattern[end]);
          end += 1;
        }
        const std::string& extra = NewerUnicode::Get().Ranges(name);
        const std::string_view original = pattern.substr(i, end - i);
        if (extra.empty() || (n == 'P' && in_class)) {
          out.append(original);
        } else if (in_class) {
          out.append(original).append(extra);
        } else {
          out.append(n == 'p' ? "[" : "[^").append("\\p{").append(name).append("}");
          out.append(extra).append("]");
        }
        i = end - 1;
        continue;
      }
      out.push_back(c);
      out.push_back(n);
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_start = out.size() + 1;
      out.push_back(c);
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') {
        out.push_back('^');
        ++i;
        ++class_start;
      }
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t end = pattern.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(pattern.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']' && out.size() > class_start) in_class = false;
    out.push_back(c);
  }
  return out;
}

Result<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  const std::string translated = TranslatePattern(pattern);
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return InvalidArgumentError("regex '{}': {} at offset {}", pattern,
                                reinterpret_cast<const char*>(msg), err_offset);
  }
  auto re = std::unique_ptr<Regex>(new Regex());
  re->pattern_ = std::string(pattern);
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Regex::~Regex() {
  if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

size_t Regex::NextCharBoundary(std::string_view text, size_t pos) {
  if (pos >= text.size()) return text.size() + 1;
  return pos + Utf8SeqLen(static_cast<uint8_t>(text[pos]));
}

Regex::Matcher::Matcher(const Regex& re)
    : re_(re),
      match_data_(
          pcre2_match_data_create_from_pattern(static_cast<pcre2_code*>(re.code_), nullptr)) {}

Regex::Matcher::~Matcher() { pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_)); }

bool Regex::Matcher::Next(std::string_view text, size_t from, size_t* begin, size_t* end) {
  if (match_data_ == nullptr) return false;
  auto* md = static_cast<pcre2_match_data*>(match_data_);
  auto* code = static_cast<pcre2_code*>(re_.code_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  // Callers pass valid UTF-8 (text is sanitized on the way in), so PCRE2 need not check it again.
  const int rc =
      re_.jit_ ? pcre2_jit_match(code, subject, text.size(), from, 0, md, nullptr)
               : pcre2_match(code, subject, text.size(), from, PCRE2_NO_UTF_CHECK, md, nullptr);
  if (rc < 0) return false;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

std::vector<std::pair<size_t, size_t>> Regex::FindAll(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  ForEachMatch(text, [&](size_t b, size_t e) { out.emplace_back(b, e); });
  return out;
}

}  // namespace kinfer::tokenizer
