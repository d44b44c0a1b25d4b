// Pre-tokenizers: cut normalized text into the words that the model (BPE) encodes one by one,
// with Hugging Face's semantics (Split with its five delimiter behaviors, ByteLevel, Metaspace,
// Digits, Punctuation, Whitespace, BERT) and llama.cpp's regex lists expressed as Splits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/regex.h"

namespace kinfer::tokenizer {

// Words as byte ranges of one buffer. A pre-tokenizer that rewrites text (Metaspace, a prefix
// space) builds a new buffer; the others only cut ranges.
struct Words {
  std::string buf;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // [begin, end) into buf

  std::string_view operator[](size_t i) const {
    return std::string_view(buf).substr(ranges[i].first, ranges[i].second - ranges[i].first);
  }
  size_t size() const { return ranges.size(); }
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Refines `words`. `at_input_start` says the first word begins the whole input (Metaspace's
  // prepend_scheme "first" looks at it).
  virtual void Apply(Words* words, bool at_input_start) const = 0;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

std::unique_ptr<PreTokenizer> MakeRegexSplit(std::unique_ptr<Regex> re, SplitBehavior behavior,
                                             bool invert);
std::unique_ptr<PreTokenizer> MakeLiteralSplit(std::string literal, SplitBehavior behavior,
                                               bool invert);
// ByteLevel: optional prefix space and GPT-2's split regex. The byte -> code point mapping itself
// is left to the model, which works on raw bytes.
std::unique_ptr<PreTokenizer> MakeByteLevel(bool add_prefix_space, bool use_regex);
enum class PrependScheme { kAlways, kFirst, kNever };
std::unique_ptr<PreTokenizer> MakeMetaspace(std::string replacement, PrependScheme scheme,
                                            bool split);
std::unique_ptr<PreTokenizer> MakeDigits(bool individual_digits);
std::unique_ptr<PreTokenizer> MakePunctuation(SplitBehavior behavior);
std::unique_ptr<PreTokenizer> MakeWhitespace();       // \w+|[^\w\s]+
std::unique_ptr<PreTokenizer> MakeWhitespaceSplit();  // on Unicode whitespace, dropped
std::unique_ptr<PreTokenizer> MakeBertPreTokenizer();
std::unique_ptr<PreTokenizer> MakeCharDelimiterSplit(char32_t delimiter);
std::unique_ptr<PreTokenizer> MakeSequencePreTokenizer(
    std::vector<std::unique_ptr<PreTokenizer>> steps);

// GPT-2's split pattern, used by ByteLevel(use_regex) and by GGUF "gpt2" vocabularies.
inline constexpr const char* kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace kinfer::tokenizer
