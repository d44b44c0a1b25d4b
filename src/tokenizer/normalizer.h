// Normalizers: the text rewrites a tokenizer applies to each stretch of input between added
// tokens before pre-tokenization (tokenizer.json "normalizer", SentencePiece's normalizer spec).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `text` (valid UTF-8) in place.
  virtual void Apply(std::string* text) const = 0;
};

std::unique_ptr<Normalizer> MakeUnicodeNormalizer(NormalizationForm form);
std::unique_ptr<Normalizer> MakeLowercaseNormalizer();
// Prepends `prefix` to non-empty text.
std::unique_ptr<Normalizer> MakePrependNormalizer(std::string prefix);
// Replaces every occurrence of a literal string, or of a regex's matches, with `content`.
std::unique_ptr<Normalizer> MakeReplaceNormalizer(std::string pattern, std::string content);
std::unique_ptr<Normalizer> MakeRegexReplaceNormalizer(std::unique_ptr<Regex> re,
                                                       std::string content);
// Strips Unicode whitespace from the left and/or right end.
std::unique_ptr<Normalizer> MakeStripNormalizer(bool left, bool right);
// Drops combining marks (Mn); meaningful after NFD/NFKD.
std::unique_ptr<Normalizer> MakeStripAccentsNormalizer();
// BERT's cleanup: control characters out, whitespace to ' ', spaces around CJK characters,
// accents stripped and lowercase as asked.
std::unique_ptr<Normalizer> MakeBertNormalizer(bool clean_text, bool handle_chinese_chars,
                                               bool strip_accents, bool lowercase);
// SentencePiece's own normalization: spaces become "▁", a "▁" goes in front of non-empty text
// (add_dummy_prefix), and with remove_extra_whitespaces leading spaces go, runs of spaces become
// one and trailing "▁" (from spaces or from the input) are dropped.
std::unique_ptr<Normalizer> MakeSentencePieceNormalizer(bool add_dummy_prefix,
                                                        bool remove_extra_whitespaces);
std::unique_ptr<Normalizer> MakeSequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps);

}  // namespace kinfer::tokenizer
