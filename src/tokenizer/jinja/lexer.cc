#include "tokenizer/jinja/lexer.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "tokenizer/jinja/error.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer::jinja {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// What a tag's closing marker does to the text after it.
enum class After { kNothing, kStripAll, kStripNewline };

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> Run() {
    After after = After::kNothing;
    while (pos_ < src_.size()) {
      const size_t tag = FindTag(pos_);
      const size_t text_end = tag == std::string::npos ? src_.size() : tag;
      std::string text = src_.substr(pos_, text_end - pos_);
      const size_t text_start = pos_;
      char kind = 0, left_mod = 0;
      if (tag != std::string::npos) {
        kind = src_[tag + 1];
        const char m = tag + 2 < src_.size() ? src_[tag + 2] : 0;
        if (m == '-' || m == '+') left_mod = m;
      }
      // The text's end, from the tag that follows it.
      if (tag != std::string::npos) {
        if (left_mod == '-') {
          RStripAll(&text);
        } else if ((kind == '%' || kind == '#') && left_mod != '+') {
          LStripBlock(&text, text_start);
        }
      }
      // The text's start, from the tag before it.
      if (after == After::kStripAll) {
        size_t i = 0;
        while (i < text.size() && IsSpace(text[i])) ++i;
        text.erase(0, i);
      } else if (after == After::kStripNewline && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
      }
      if (!text.empty()) Push(Token::Type::kText, std::move(text), text_start);
      if (tag == std::string::npos) break;
      pos_ = tag;
      if (kind == '#') {
        after = Comment();
      } else if (kind == '%') {
        after = Block();
      } else {
        after = Var();
      }
    }
    Token eof{Token::Type::kEof, ""};
    Locate(src_.size(), &eof);
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  size_t FindTag(size_t from) const {
    size_t i = from;
    while (true) {
      i = src_.find('{', i);
      if (i == std::string::npos || i + 1 >= src_.size()) return std::string::npos;
      const char n = src_[i + 1];
      if (n == '{' || n == '%' || n == '#') return i;
      ++i;
    }
  }

  static void RStripAll(std::string* text) {
    size_t n = text->size();
    while (n > 0 && IsSpace((*text)[n - 1])) --n;
    text->resize(n);
  }

  // lstrip_blocks: spaces and tabs between the start of the line and a block tag go.
  void LStripBlock(std::string* text, size_t text_start) const {
    size_t n = text->size();
    while (n > 0 && ((*text)[n - 1] == ' ' || (*text)[n - 1] == '\t')) --n;
    const bool line_start = n > 0 ? (*text)[n - 1] == '\n' : text_start == 0 || at_line_start_;
    if (line_start) text->resize(n);
  }

  void Locate(size_t offset, Token* t) {
    // Advance the line/column cursor to `offset` (offsets only grow).
    while (loc_offset_ < offset && loc_offset_ < src_.size()) {
      if (src_[loc_offset_] == '\n') {
        ++line_;
        col_ = 1;
      } else if ((static_cast<uint8_t>(src_[loc_offset_]) & 0xC0) != 0x80) {
        ++col_;
      }
      ++loc_offset_;
    }
    t->line = line_;
    t->column = col_;
  }

  void Push(Token::Type type, std::string value, size_t offset) {
    Token t{type, std::move(value)};
    Locate(offset, &t);
    tokens_.push_back(std::move(t));
  }

  [[noreturn]] void Fail(const std::string& msg, size_t offset) {
    Token t{Token::Type::kEof, ""};
    Locate(offset, &t);
    throw Error(msg, t.line, t.column);
  }

  After Comment() {
    const size_t start = pos_;
    const size_t end = src_.find("#}", pos_ + 2);
    if (end == std::string::npos) Fail("unterminated comment", start);
    const char right_mod = end > pos_ + 2 ? src_[end - 1] : 0;
    pos_ = end + 2;
    at_line_start_ = false;
    if (right_mod == '-') return After::kStripAll;
    return right_mod == '+' ? After::kNothing : After::kStripNewline;
  }

  // {% raw %}...{% endraw %}: the content is text.
  bool Raw(size_t after_open) {
    size_t i = after_open;
    while (i < src_.size() && IsSpace(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0 || (i + 3 < src_.size() && IsNameChar(src_[i + 3]))) {
      return false;
    }
    i += 3;
    while (i < src_.size() && IsSpace(src_[i])) ++i;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    if (src_.compare(i, 2, "%}") != 0) return false;
    const size_t body = i + 2;
    size_t search = body;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) Fail("unterminated raw block", pos_);
      size_t j = open + 2;
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) ++j;
      while (j < src_.size() && IsSpace(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") == 0) {
        size_t k = j + 6;
        while (k < src_.size() && IsSpace(src_[k])) ++k;
        if (k < src_.size() && (src_[k] == '-' || src_[k] == '+')) ++k;
        if (src_.compare(k, 2, "%}") == 0) {
          Push(Token::Type::kText, src_.substr(body, open - body), body);
          pos_ = k + 2;
          return true;
        }
      }
      search = open + 2;
    }
  }

  After Block() {
    const size_t open = pos_;
    size_t p = pos_ + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    if (Raw(p)) {
      at_line_start_ = false;
      return After::kStripNewline;
    }
    Push(Token::Type::kBlockBegin, "{%", open);
    pos_ = p;
    const char mod = Expression(/*block=*/true);
    at_line_start_ = false;
    if (mod == '-') return After::kStripAll;
    return mod == '+' ? After::kNothing : After::kStripNewline;
  }

  After Var() {
    Push(Token::Type::kVarBegin, "{{", pos_);
    pos_ += 2;
    if (pos_ < src_.size() && (src_[pos_] == '-' || src_[pos_] == '+')) ++pos_;
    const char mod = Expression(/*block=*/false);
    at_line_start_ = false;
    return mod == '-' ? After::kStripAll : After::kNothing;
  }

  // Tokens up to the closing %} or }}; returns the closing marker's modifier ('-', '+' or 0).
  char Expression(bool block) {
    const size_t start = pos_;
    int depth = 0;  // open ( [ { : a '}' inside them is not the tag's end
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) Fail(block ? "unterminated block tag" : "unterminated {{", start);
      const char c = src_[pos_];
      if (depth == 0) {
        for (char mod : {'-', '+', '\0'}) {
          const std::string close = std::string(mod ? 1 : 0, mod) + (block ? "%}" : "}}");
          if (src_.compare(pos_, close.size(), close) == 0) {
            Push(block ? Token::Type::kBlockEnd : Token::Type::kVarEnd, block ? "%}" : "}}", pos_);
            pos_ += close.size();
            return mod;
          }
        }
      }
      if (IsNameStart(c)) {
        size_t e = pos_;
        while (e < src_.size() && IsNameChar(src_[e])) ++e;
        Push(Token::Type::kName, src_.substr(pos_, e - pos_), pos_);
        pos_ = e;
      } else if (IsDigit(c)) {
        Number();
      } else if (c == '\'' || c == '"') {
        String();
      } else {
        Operator(&depth);
      }
    }
  }

  void Number() {
    const size_t start = pos_;
    size_t e = pos_;
    auto digits = [&] {
      while (e < src_.size() && (IsDigit(src_[e]) ||
                                 (src_[e] == '_' && e + 1 < src_.size() && IsDigit(src_[e + 1])))) {
        ++e;
      }
    };
    digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && IsDigit(src_[e + 1])) {
      is_float = true;
      ++e;
      digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t x = e + 1;
      if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
      if (x < src_.size() && IsDigit(src_[x])) {
        is_float = true;
        e = x;
        digits();
      }
    }
    std::string text;
    for (size_t i = start; i < e; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    Token t{is_float ? Token::Type::kFloat : Token::Type::kInt, text};
    Locate(start, &t);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      auto r = std::from_chars(text.data(), text.data() + text.size(), t.int_value);
      if (r.ec != std::errc()) {
        t.type = Token::Type::kFloat;  // beyond int64: Python would keep it exact; close enough
        t.float_value = std::strtod(text.c_str(), nullptr);
      }
    }
    tokens_.push_back(std::move(t));
    pos_ = e;
  }

  // A quoted string with Python's escapes (\n, \t, \\, \', \", \xhh, \uhhhh, \Uhhhhhhhh, ...).
  void String() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) Fail("unterminated string", start);
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= src_.size()) Fail("unterminated string", start);
      const char e = src_[pos_++];
      auto hex = [&](int n) {
        uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
          if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_]))) {
            Fail("truncated \\x, \\u or \\U escape in a string", start);
          }
          const char h = src_[pos_++];
          v = v * 16 + static_cast<uint32_t>(IsDigit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = kReplacementChar;
        AppendUtf8(v, &out);
      };
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '\n':
          break;  // line continuation
        case 'x':
          hex(2);
          break;
        case 'u':
          hex(4);
          break;
        case 'U':
          hex(8);
          break;
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7';
               ++k) {
            v = v * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
          }
          AppendUtf8(v, &out);
          break;
        }
        default:
          out.push_back('\\');
          out.push_back(e);
      }
    }
    Push(Token::Type::kString, std::move(out), start);
  }

  void Operator(int* depth) {
    static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                       "/",  "%",  "~",  "(",  ")",  "[",  "]", "{", "}",
                                       ",",  ".",  ":",  "|",  "=",  "<",  ">", ";"};
    for (const char* op : kOps) {
      const size_t n = std::char_traits<char>::length(op);
      if (src_.compare(pos_, n, op) == 0) {
        if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++*depth;
        if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && *depth > 0) --*depth;
        Push(Token::Type::kOp, op, pos_);
        pos_ += n;
        return;
      }
    }
    Fail(fmt::format("unexpected character '{}'", src_[pos_]), pos_);
  }

  std::string src_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
  size_t loc_offset_ = 0;
  int line_ = 1;
  int col_ = 1;
  bool at_line_start_ = true;
};

}  // namespace

std::vector<Token> Lex(std::string_view source) {
  // Jinja2 reads templates with universal newlines and drops one trailing newline.
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src.push_back(source[i]);
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  return Lexer(std::move(src)).Run();
}

}  // namespace kinfer::tokenizer::jinja
