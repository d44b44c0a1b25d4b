#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {

Result<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
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
