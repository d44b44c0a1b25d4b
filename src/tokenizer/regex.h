// The split regexes of tokenizer.json and llama.cpp (Oniguruma syntax: \p{L}, (?i:...), lookahead)
// compiled with PCRE2 in UTF + UCP mode and JIT-compiled when the platform allows.
//
//   KINFER_ASSIGN_OR_RETURN(auto re, Regex::Compile(R"(\p{N}{1,3})"));
//   re->ForEachMatch(text, [&](size_t begin, size_t end) { ... });
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kinfer::tokenizer {

// The pattern PCRE2 is given for an Oniguruma-syntax `pattern`: \\s and \\S spelled as Unicode
// White_Space, so both engines agree on what a space is.
std::string TranslatePattern(std::string_view pattern);

class Regex {
 public:
  // Errors carry PCRE2's message and the offset in the pattern.
  static Result<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Calls fn(begin, end) for each non-overlapping match in `text` (valid UTF-8), left to right.
  // Empty matches are skipped over, as Hugging Face's splitter drops them.
  template <typename Fn>
  void ForEachMatch(std::string_view text, Fn&& fn) const {
    Matcher m(*this);
    size_t pos = 0;
    size_t begin, end;
    while (pos <= text.size() && m.Next(text, pos, &begin, &end)) {
      if (end > begin) {
        fn(begin, end);
        pos = end;
      } else {
        pos = NextCharBoundary(text, begin);
      }
    }
  }

  // All matches as (begin, end) byte ranges.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

 private:
  class Matcher {
   public:
    explicit Matcher(const Regex& re);
    ~Matcher();
    Matcher(const Matcher&) = delete;
    Matcher& operator=(const Matcher&) = delete;
    bool Next(std::string_view text, size_t from, size_t* begin, size_t* end);

   private:
    const Regex& re_;
    void* match_data_;
  };

  Regex() = default;
  static size_t NextCharBoundary(std::string_view text, size_t pos);

  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace kinfer::tokenizer
