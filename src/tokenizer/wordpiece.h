// WordPiece: greedy longest-match-first over a word (BERT vocabularies), with Hugging Face's "##"
// continuation prefix or llama.cpp's GGUF convention of a "▁" before each word.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/model.h"

namespace kinfer::tokenizer {

class WordPieceModel final : public Model {
 public:
  struct Options {
    std::string continuing_prefix = "##";  // before every piece but a word's first
    std::string word_prefix;               // before each word ("▁" in GGUF BERT vocabs)
    int32_t unk_id = 0;
    size_t max_input_chars_per_word = 100;
  };

  static Result<std::unique_ptr<WordPieceModel>> Create(
      const std::vector<std::pair<std::string, int32_t>>& vocab, Options options);

  // A word with a piece missing from the vocab becomes one unknown token.
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const override;

 private:
  WordPieceModel() = default;
  int32_t Find(std::string_view s) const;

  Options options_;
  std::vector<std::pair<std::string, int32_t>> sorted_;  // by string, for lookups
};

}  // namespace kinfer::tokenizer
