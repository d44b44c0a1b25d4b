#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {
namespace {

bool IsWordChar(char32_t cp) { return cp == '_' || IsAlphanumeric(cp); }

// The code point that ends text[0, end).
char32_t LastChar(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return DecodeUtf8(text, start).cp;
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view key, int32_t token) {
  if (nodes.empty()) nodes.emplace_back();
  if (key.empty()) return;
  first[static_cast<uint8_t>(key[0])] = true;
  int32_t n = 0;
  for (char ch : key) {
    const uint8_t b = static_cast<uint8_t>(ch);
    auto& kids = nodes[n].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1}));
    if (it != kids.end() && it->first == b) {
      n = it->second;
      continue;
    }
    const int32_t child = static_cast<int32_t>(nodes.size());
    kids.insert(it, {b, child});
    nodes.emplace_back();
    n = child;
  }
  if (nodes[n].token < 0) nodes[n].token = token;  // the first token with this content wins
}

int32_t AddedVocabulary::Trie::LongestAt(std::string_view text, size_t pos, size_t* len) const {
  int32_t best = -1;
  int32_t n = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(text[i]);
    const auto& kids = nodes[n].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1}));
    if (it == kids.end() || it->first != b) break;
    n = it->second;
    if (nodes[n].token >= 0) {
      best = nodes[n].token;
      *len = i + 1 - pos;
    }
  }
  return best;
}

void AddedVocabulary::Build(const std::vector<AddedToken>& tokens, const Normalizer* normalizer) {
  tokens_ = tokens;
  raw_ = Trie();
  normalized_ = Trie();
  raw_.nodes.emplace_back();
  normalized_.nodes.emplace_back();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.content.empty()) continue;
    if (t.normalized) {
      std::string content = t.content;
      if (normalizer != nullptr) normalizer->Apply(&content);
      normalized_.Insert(content, static_cast<int32_t>(i));
    } else {
      raw_.Insert(t.content, static_cast<int32_t>(i));
    }
  }
}

void AddedVocabulary::Split(std::string_view text, bool parse_special, bool normalized_pass,
                            std::vector<Segment>* out) const {
  const Trie& trie = normalized_pass ? normalized_ : raw_;
  size_t start_offset = 0;
  if (!trie.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (!trie.first[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      size_t len = 0;
      const int32_t ti = trie.LongestAt(text, pos, &len);
      if (ti < 0) {
        ++pos;
        continue;
      }
      const AddedToken& tok = tokens_[ti];
      size_t start = pos, stop = pos + len;
      pos = stop;
      if (tok.special && !parse_special) continue;
      if (tok.single_word) {
        const bool start_ok = start == 0 || !IsWordChar(LastChar(text, start));
        const bool stop_ok = stop == text.size() || !IsWordChar(DecodeUtf8(text, stop).cp);
        if (!start_ok || !stop_ok) continue;
      }
      if (tok.lstrip) {
        size_t s = start;
        while (s > start_offset) {
          size_t p = s - 1;
          while (p > 0 && (static_cast<uint8_t>(text[p]) & 0xC0) == 0x80) --p;
          if (!IsWhitespace(DecodeUtf8(text, p).cp)) break;
          s = p;
        }
        start = std::max(s, start_offset);
      }
      if (tok.rstrip) {
        while (stop < text.size()) {
          Utf8Char c = DecodeUtf8(text, stop);
          if (!IsWhitespace(c.cp)) break;
          stop += c.len;
        }
        pos = stop;
      }
      if (start_offset < start) out->push_back({-1, start_offset, start});
      out->push_back({tok.id, start, stop});
      start_offset = stop;
    }
  }
  if (start_offset < text.size() || text.empty()) out->push_back({-1, start_offset, text.size()});
}

}  // namespace kinfer::tokenizer
