#include "tokenizer/pre_tokenizer.h"

#include <utility>

#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {
namespace {

using Range = std::pair<uint32_t, uint32_t>;

struct Piece {
  uint32_t begin, end;
  bool match;
};

// Turns the pieces of one word (covering it left to right, matches flagged) into words, as
// Hugging Face's NormalizedString::split does for each delimiter behavior. Empty words are
// dropped.
void Combine(std::vector<Piece>& pieces, SplitBehavior behavior, bool invert,
             std::vector<Range>* out) {
  if (invert) {
    for (auto& p : pieces) p.match = !p.match;
  }
  auto emit = [&](uint32_t b, uint32_t e) {
    if (e > b) out->emplace_back(b, e);
  };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& p : pieces) emit(p.begin, p.end);
      break;
    case SplitBehavior::kRemoved:
      for (const auto& p : pieces) {
        if (!p.match) emit(p.begin, p.end);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      std::vector<Range> acc;
      bool previous_match = false;
      for (const auto& p : pieces) {
        if (p.match && !previous_match && !acc.empty()) {
          acc.back().second = p.end;
        } else {
          acc.emplace_back(p.begin, p.end);
        }
        previous_match = p.match;
      }
      for (const auto& r : acc) emit(r.first, r.second);
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<Range> acc;
      bool previous_match = false;
      for (size_t i = pieces.size(); i-- > 0;) {
        const auto& p = pieces[i];
        if (p.match && !previous_match && !acc.empty()) {
          acc.back().first = p.begin;
        } else {
          acc.emplace_back(p.begin, p.end);
        }
        previous_match = p.match;
      }
      for (size_t i = acc.size(); i-- > 0;) emit(acc[i].first, acc[i].second);
      break;
    }
    case SplitBehavior::kContiguous: {
      std::vector<Range> acc;
      bool previous_match = false;
      for (const auto& p : pieces) {
        if (p.match == previous_match && !acc.empty()) {
          acc.back().second = p.end;
        } else {
          acc.emplace_back(p.begin, p.end);
        }
        previous_match = p.match;
      }
      for (const auto& r : acc) emit(r.first, r.second);
      break;
    }
  }
}

// Applies `find` (which appends the pieces of one word) to every word.
template <typename Find>
void SplitEach(Words* words, SplitBehavior behavior, bool invert, Find&& find) {
  std::vector<Range> out;
  out.reserve(words->ranges.size() * 2);
  std::vector<Piece> pieces;
  for (const auto& [b, e] : words->ranges) {
    pieces.clear();
    find(std::string_view(words->buf).substr(b, e - b), b, &pieces);
    Combine(pieces, behavior, invert, &out);
  }
  words->ranges = std::move(out);
}

// Pieces for a character predicate: each matching character on its own, the runs between them
// as single pieces.
template <typename Pred>
void CharPieces(std::string_view word, uint32_t base, Pred&& pred, std::vector<Piece>* pieces) {
  uint32_t last = 0;
  uint32_t i = 0;
  while (i < word.size()) {
    Utf8Char c = DecodeUtf8(word, i);
    if (pred(c.cp)) {
      if (last < i) pieces->push_back({base + last, base + i, false});
      pieces->push_back({base + i, base + i + c.len, true});
      last = i + c.len;
    }
    i += c.len;
  }
  if (last < word.size()) pieces->push_back({base + last, base + uint32_t(word.size()), false});
}

class RegexSplit final : public PreTokenizer {
 public:
  RegexSplit(std::unique_ptr<Regex> re, SplitBehavior behavior, bool invert)
      : re_(std::move(re)), behavior_(behavior), invert_(invert) {}

  void Apply(Words* words, bool) const override {
    if (behavior_ == SplitBehavior::kIsolated && !invert_) {
      // The common case, without the intermediate piece list.
      std::vector<Range> out;
      out.reserve(words->ranges.size() + words->buf.size() / 4);
      for (const auto& range : words->ranges) {
        const uint32_t b = range.first, e = range.second;
        const std::string_view word = std::string_view(words->buf).substr(b, e - b);
        uint32_t prev = 0;
        re_->ForEachMatch(word, [&](size_t mb, size_t me) {
          if (mb > prev) out.emplace_back(b + prev, b + uint32_t(mb));
          out.emplace_back(b + uint32_t(mb), b + uint32_t(me));
          prev = uint32_t(me);
        });
        if (prev < word.size()) out.emplace_back(b + prev, e);
      }
      words->ranges = std::move(out);
      return;
    }
    SplitEach(words, behavior_, invert_,
              [&](std::string_view word, uint32_t base, std::vector<Piece>* pieces) {
                uint32_t prev = 0;
                re_->ForEachMatch(word, [&](size_t mb, size_t me) {
                  if (mb > prev) pieces->push_back({base + prev, base + uint32_t(mb), false});
                  pieces->push_back({base + uint32_t(mb), base + uint32_t(me), true});
                  prev = uint32_t(me);
                });
                if (prev < word.size()) {
                  pieces->push_back({base + prev, base + uint32_t(word.size()), false});
                }
              });
  }

 private:
  std::unique_ptr<Regex> re_;
  SplitBehavior behavior_;
  bool invert_;
};

class LiteralSplit final : public PreTokenizer {
 public:
  LiteralSplit(std::string literal, SplitBehavior behavior, bool invert)
      : literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}

  void Apply(Words* words, bool) const override {
    if (literal_.empty()) return;
    SplitEach(
        words, behavior_, invert_,
        [&](std::string_view word, uint32_t base, std::vector<Piece>* pieces) {
          size_t prev = 0;
          while (true) {
            const size_t hit = word.find(literal_, prev);
            if (hit == std::string_view::npos) break;
            if (hit > prev) pieces->push_back({base + uint32_t(prev), base + uint32_t(hit), false});
            pieces->push_back({base + uint32_t(hit), base + uint32_t(hit + literal_.size()), true});
            prev = hit + literal_.size();
          }
          if (prev < word.size()) {
            pieces->push_back({base + uint32_t(prev), base + uint32_t(word.size()), false});
          }
        });
  }

 private:
  std::string literal_;
  SplitBehavior behavior_;
  bool invert_;
};

template <typename Pred>
class CharSplit final : public PreTokenizer {
 public:
  CharSplit(Pred pred, SplitBehavior behavior) : pred_(std::move(pred)), behavior_(behavior) {}
  void Apply(Words* words, bool) const override {
    SplitEach(words, behavior_, false,
              [&](std::string_view word, uint32_t base, std::vector<Piece>* pieces) {
                CharPieces(word, base, pred_, pieces);
              });
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> MakeCharSplit(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharSplit<Pred>>(std::move(pred), behavior);
}

// Rebuilds the buffer with `fn(word, index, &out)` appending each word's new text.
template <typename Fn>
void Rewrite(Words* words, Fn&& fn) {
  Words next;
  next.buf.reserve(words->buf.size() + words->ranges.size() * 3);
  next.ranges.reserve(words->ranges.size());
  for (size_t i = 0; i < words->ranges.size(); ++i) {
    const uint32_t b = uint32_t(next.buf.size());
    fn((*words)[i], i, &next.buf);
    next.ranges.emplace_back(b, uint32_t(next.buf.size()));
  }
  *words = std::move(next);
}

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, std::unique_ptr<PreTokenizer> split)
      : add_prefix_space_(add_prefix_space), split_(std::move(split)) {}

  void Apply(Words* words, bool at_input_start) const override {
    if (add_prefix_space_) {
      Rewrite(words, [](std::string_view w, size_t, std::string* out) {
        if (w.empty() || w[0] != ' ') out->push_back(' ');
        out->append(w);
      });
    }
    if (split_) split_->Apply(words, at_input_start);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<PreTokenizer> split_;
};

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}

  void Apply(Words* words, bool at_input_start) const override {
    const bool first_at_start =
        at_input_start && !words->ranges.empty() && words->ranges[0].first == 0;
    Rewrite(words, [&](std::string_view w, size_t index, std::string* out) {
      std::string replaced;
      replaced.reserve(w.size() + 8);
      for (char ch : w) {
        if (ch == ' ') {
          replaced.append(replacement_);
        } else {
          replaced.push_back(ch);
        }
      }
      const bool starts = replaced.compare(0, replacement_.size(), replacement_) == 0;
      bool prepend = false;
      if (scheme_ == PrependScheme::kAlways) prepend = !starts;
      if (scheme_ == PrependScheme::kFirst) prepend = !starts && index == 0 && first_at_start;
      if (prepend) out->append(replacement_);
      out->append(replaced);
    });
    if (!split_) return;
    // Split before each replacement character (MergedWithNext).
    SplitEach(words, SplitBehavior::kMergedWithNext, false,
              [&](std::string_view word, uint32_t base, std::vector<Piece>* pieces) {
                size_t prev = 0;
                while (true) {
                  const size_t hit = word.find(replacement_, prev);
                  if (hit == std::string_view::npos) break;
                  if (hit > prev)
                    pieces->push_back({base + uint32_t(prev), base + uint32_t(hit), false});
                  pieces->push_back(
                      {base + uint32_t(hit), base + uint32_t(hit + replacement_.size()), true});
                  prev = hit + replacement_.size();
                }
                if (prev < word.size()) {
                  pieces->push_back({base + uint32_t(prev), base + uint32_t(word.size()), false});
                }
              });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void Apply(Words* words, bool at_input_start) const override {
    for (const auto& s : steps_) s->Apply(words, at_input_start);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

bool IsBertPunctuation(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
           (cp >= 123 && cp <= 126);
  }
  return IsPunctuation(cp);
}

}  // namespace

std::unique_ptr<PreTokenizer> MakeRegexSplit(std::unique_ptr<Regex> re, SplitBehavior behavior,
                                             bool invert) {
  return std::make_unique<RegexSplit>(std::move(re), behavior, invert);
}

std::unique_ptr<PreTokenizer> MakeLiteralSplit(std::string literal, SplitBehavior behavior,
                                               bool invert) {
  return std::make_unique<LiteralSplit>(std::move(literal), behavior, invert);
}

std::unique_ptr<PreTokenizer> MakeByteLevel(bool add_prefix_space, bool use_regex) {
  std::unique_ptr<PreTokenizer> split;
  if (use_regex) {
    auto re = Regex::Compile(kGpt2SplitPattern);
    KINFER_CHECK(re.ok());
    split = MakeRegexSplit(std::move(*re), SplitBehavior::kIsolated, false);
  }
  return std::make_unique<ByteLevel>(add_prefix_space, std::move(split));
}

std::unique_ptr<PreTokenizer> MakeMetaspace(std::string replacement, PrependScheme scheme,
                                            bool split) {
  return std::make_unique<Metaspace>(std::move(replacement), scheme, split);
}

std::unique_ptr<PreTokenizer> MakeDigits(bool individual_digits) {
  return MakeCharSplit([](char32_t cp) { return IsNumeric(cp); },
                       individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
}

std::unique_ptr<PreTokenizer> MakePunctuation(SplitBehavior behavior) {
  return MakeCharSplit([](char32_t cp) { return IsBertPunctuation(cp); }, behavior);
}

std::unique_ptr<PreTokenizer> MakeWhitespace() {
  auto re = Regex::Compile(R"(\w+|[^\w\s]+)");
  KINFER_CHECK(re.ok());
  return MakeRegexSplit(std::move(*re), SplitBehavior::kRemoved, true);
}

std::unique_ptr<PreTokenizer> MakeWhitespaceSplit() {
  return MakeCharSplit([](char32_t cp) { return IsWhitespace(cp); }, SplitBehavior::kRemoved);
}

std::unique_ptr<PreTokenizer> MakeBertPreTokenizer() {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  steps.push_back(MakeWhitespaceSplit());
  steps.push_back(MakePunctuation(SplitBehavior::kIsolated));
  return MakeSequencePreTokenizer(std::move(steps));
}

std::unique_ptr<PreTokenizer> MakeCharDelimiterSplit(char32_t delimiter) {
  return MakeCharSplit([delimiter](char32_t cp) { return cp == delimiter; },
                       SplitBehavior::kRemoved);
}

std::unique_ptr<PreTokenizer> MakeSequencePreTokenizer(
    std::vector<std::unique_ptr<PreTokenizer>> steps) {
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}

}  // namespace kinfer::tokenizer
