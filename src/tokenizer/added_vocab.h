// Added and special tokens: found in the input before any normalization or BPE, leftmost and then
// longest first, honoring Hugging Face's flags (special, lstrip, rstrip, single_word, normalized).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::tokenizer {

class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;      // skipped by Decode(skip_special_tokens); matched only when asked
  bool lstrip = false;       // swallows the whitespace before it
  bool rstrip = false;       // swallows the whitespace after it
  bool single_word = false;  // only matches when not inside a word
  bool normalized = false;   // matched in normalized text rather than raw input
};

// A stretch of input: an added token, or text (id < 0) to normalize and encode.
struct Segment {
  int32_t id;
  size_t begin;
  size_t end;
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) rewrites the content of tokens with normalized == true, as Hugging
  // Face matches those in normalized text.
  void Build(const std::vector<AddedToken>& tokens, const Normalizer* normalizer);

  bool empty() const { return raw_.empty() && normalized_.empty(); }
  bool has_normalized() const { return !normalized_.empty(); }

  // Cuts `text` into segments with the raw (normalized == false) tokens, or with the normalized
  // ones when `normalized_pass`. Special tokens are matched only when `parse_special`.
  void Split(std::string_view text, bool parse_special, bool normalized_pass,
             std::vector<Segment>* out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                 // index into tokens_
  };
  struct Trie {
    std::vector<Node> nodes;
    std::array<bool, 256> first{};
    bool empty() const { return nodes.size() <= 1; }
    void Insert(std::string_view key, int32_t token);
    // The longest key starting at text[pos]: its token index and length, or -1.
    int32_t LongestAt(std::string_view text, size_t pos, size_t* len) const;
  };

  std::vector<AddedToken> tokens_;
  Trie raw_;
  Trie normalized_;
};

}  // namespace kinfer::tokenizer
