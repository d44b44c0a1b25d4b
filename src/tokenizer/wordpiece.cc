#include "tokenizer/wordpiece.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {

Result<std::unique_ptr<WordPieceModel>> WordPieceModel::Create(
    const std::vector<std::pair<std::string, int32_t>>& vocab, Options options) {
  auto m = std::unique_ptr<WordPieceModel>(new WordPieceModel());
  m->options_ = std::move(options);
  m->sorted_ = vocab;
  std::stable_sort(m->sorted_.begin(), m->sorted_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return m;
}

int32_t WordPieceModel::Find(std::string_view s) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), s,
                             [](const auto& e, std::string_view k) { return e.first < k; });
  return it != sorted_.end() && it->first == s ? it->second : -1;
}

void WordPieceModel::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  size_t chars = 0;
  for (size_t i = 0; i < word.size(); i += Utf8SeqLen(static_cast<uint8_t>(word[i]))) ++chars;
  if (chars > options_.max_input_chars_per_word) {
    out->push_back(options_.unk_id);
    return;
  }
  const std::string w = options_.word_prefix + std::string(word);
  const size_t first_end = options_.word_prefix.size();
  std::vector<int32_t> pieces;
  std::string candidate;
  size_t start = 0;
  while (start < w.size()) {
    size_t end = w.size();
    int32_t found = -1;
    while (end > start) {
      candidate.clear();
      if (start > 0) candidate.append(options_.continuing_prefix);
      candidate.append(w, start, end - start);
      found = Find(candidate);
      if (found >= 0) break;
      // Back off one character (never split the word prefix from the first character).
      size_t e = end - 1;
      while (e > start && (static_cast<uint8_t>(w[e]) & 0xC0) == 0x80) --e;
      if (start == 0 && e < first_end) e = start;
      end = e;
    }
    if (found < 0) {
      out->push_back(options_.unk_id);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  out->insert(out->end(), pieces.begin(), pieces.end());
}

}  // namespace kinfer::tokenizer
