#include "tokenizer/normalizer.h"

#include <utility>

namespace kinfer::tokenizer {
namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalizationForm form) : form_(form) {}
  void Apply(std::string* text) const override { *text = Normalize(*text, form_); }

 private:
  NormalizationForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void Apply(std::string* text) const override { *text = ToLowerUnicode(*text); }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Apply(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Apply(std::string* text) const override {
    if (pattern_.empty() || text->find(pattern_) == std::string::npos) return;
    std::string out;
    out.reserve(text->size() + text->size() / 8);
    size_t pos = 0;
    while (true) {
      const size_t hit = text->find(pattern_, pos);
      if (hit == std::string::npos) break;
      out.append(*text, pos, hit - pos);
      out.append(content_);
      pos = hit + pattern_.size();
    }
    out.append(*text, pos, std::string::npos);
    *text = std::move(out);
  }

 private:
  std::string pattern_;
  std::string content_;
};

class RegexReplaceNormalizer final : public Normalizer {
 public:
  RegexReplaceNormalizer(std::unique_ptr<Regex> re, std::string content)
      : re_(std::move(re)), content_(std::move(content)) {}
  void Apply(std::string* text) const override {
    std::string out;
    size_t pos = 0;
    re_->ForEachMatch(*text, [&](size_t b, size_t e) {
      out.append(*text, pos, b - pos);
      out.append(content_);
      pos = e;
    });
    out.append(*text, pos, std::string::npos);
    *text = std::move(out);
  }

 private:
  std::unique_ptr<Regex> re_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Apply(std::string* text) const override {
    size_t begin = 0, end = text->size();
    if (left_) {
      while (begin < end) {
        Utf8Char c = DecodeUtf8(*text, begin);
        if (!IsWhitespace(c.cp)) break;
        begin += c.len;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>((*text)[start]) & 0xC0) == 0x80) --start;
        Utf8Char c = DecodeUtf8(*text, start);
        if (!IsWhitespace(c.cp)) break;
        end = start;
      }
    }
    *text = text->substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  void Apply(std::string* text) const override { *text = StripMarks(*text); }
};

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}
  void Apply(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    size_t i = 0;
    while (i < text->size()) {
      Utf8Char c = DecodeUtf8(*text, i);
      const std::string_view ch(text->data() + i, c.len);
      i += c.len;
      if (clean_text_) {
        if (c.cp == 0 || c.cp == 0xFFFD) continue;
        if (c.cp != '\t' && c.cp != '\n' && c.cp != '\r' && IsControl(c.cp)) continue;
        if (IsWhitespace(c.cp)) {
          out.push_back(' ');
          continue;
        }
      }
      if (handle_chinese_chars_ && IsChineseChar(c.cp)) {
        out.push_back(' ');
        out.append(ch);
        out.push_back(' ');
        continue;
      }
      out.append(ch);
    }
    if (strip_accents_) out = StripMarks(Normalize(out, NormalizationForm::kNfd));
    if (lowercase_) out = ToLowerUnicode(out);
    *text = std::move(out);
  }

 private:
  bool clean_text_, handle_chinese_chars_, strip_accents_, lowercase_;
};

class SentencePieceNormalizer final : public Normalizer {
 public:
  SentencePieceNormalizer(bool add_dummy_prefix, bool remove_extra_whitespaces)
      : add_dummy_prefix_(add_dummy_prefix), remove_extra_whitespaces_(remove_extra_whitespaces) {}
  void Apply(std::string* text) const override {
    static constexpr std::string_view kSpace = "\u2581";
    size_t i = 0;
    if (remove_extra_whitespaces_) {
      while (i < text->size() && (*text)[i] == ' ') ++i;
    }
    if (i == text->size()) {
      text->clear();
      return;
    }
    std::string out;
    out.reserve(text->size() + text->size() / 4 + 3);
    if (add_dummy_prefix_) out.append(kSpace);
    bool prev_space = remove_extra_whitespaces_;
    for (; i < text->size(); ++i) {
      const char ch = (*text)[i];
      if (ch == ' ') {
        if (!(remove_extra_whitespaces_ && prev_space)) out.append(kSpace);
        prev_space = true;
        continue;
      }
      prev_space = false;
      out.push_back(ch);
    }
    if (remove_extra_whitespaces_) {
      while (out.size() >= kSpace.size() &&
             std::string_view(out).substr(out.size() - kSpace.size()) == kSpace) {
        out.resize(out.size() - kSpace.size());
      }
    }
    *text = std::move(out);
  }

 private:
  bool add_dummy_prefix_, remove_extra_whitespaces_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void Apply(std::string* text) const override {
    for (const auto& s : steps_) s->Apply(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> MakeUnicodeNormalizer(NormalizationForm form) {
  return std::make_unique<UnicodeNormalizer>(form);
}
std::unique_ptr<Normalizer> MakeLowercaseNormalizer() {
  return std::make_unique<LowercaseNormalizer>();
}
std::unique_ptr<Normalizer> MakePrependNormalizer(std::string prefix) {
  return std::make_unique<PrependNormalizer>(std::move(prefix));
}
std::unique_ptr<Normalizer> MakeReplaceNormalizer(std::string pattern, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
}
std::unique_ptr<Normalizer> MakeRegexReplaceNormalizer(std::unique_ptr<Regex> re,
                                                       std::string content) {
  return std::make_unique<RegexReplaceNormalizer>(std::move(re), std::move(content));
}
std::unique_ptr<Normalizer> MakeStripNormalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}
std::unique_ptr<Normalizer> MakeStripAccentsNormalizer() {
  return std::make_unique<StripAccentsNormalizer>();
}
std::unique_ptr<Normalizer> MakeBertNormalizer(bool clean_text, bool handle_chinese_chars,
                                               bool strip_accents, bool lowercase) {
  return std::make_unique<BertNormalizer>(clean_text, handle_chinese_chars, strip_accents,
                                          lowercase);
}
std::unique_ptr<Normalizer> MakeSentencePieceNormalizer(bool add_dummy_prefix,
                                                        bool remove_extra_whitespaces) {
  return std::make_unique<SentencePieceNormalizer>(add_dummy_prefix, remove_extra_whitespaces);
}
std::unique_ptr<Normalizer> MakeSequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) {
  return std::make_unique<SequenceNormalizer>(std::move(steps));
}

}  // namespace kinfer::tokenizer
