#include "structured/gbnf.h"

#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "core/json.h"

namespace kinfer::structured {
namespace {

constexpr int kMaxDepth = 64;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A code point in a regex character class, escaped so that any value is literal.
std::string ClassChar(char32_t cp) {
  if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9')) {
    return std::string(1, static_cast<char>(cp));
  }
  return fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(cp));
}

class Converter {
 public:
  explicit Converter(std::string_view s) : s_(s) { taken_.insert("start"); }

  Result<std::string> Run() {
    SkipSpace(true);
    while (pos_ < s_.size()) {
      KINFER_RETURN_IF_ERROR(ParseRule());
      SkipSpace(true);
    }
    if (rules_.empty()) return Fail("the grammar defines no rule");
    for (const auto& [name, where] : used_) {
      if (!defined_.count(name)) {
        return InvalidArgumentError("GBNF line {}: rule '{}' is used but never defined", where,
                                    name);
      }
    }
    if (!defined_.count("root")) return InvalidArgumentError("GBNF: no 'root' rule");
    std::string out = "start: " + LarkName("root") + "\n";
    for (const auto& r : rules_) out += r + "\n";
    return out;
  }

 private:
  Status Fail(std::string_view what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgumentError("GBNF line {}, column {}: {}", line, col, what);
  }

  size_t Line() const {
    size_t line = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n';
    return line;
  }

  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }

  // Spaces, tabs and comments; newlines too when `newlines`.
  void SkipSpace(bool newlines) {
    while (!AtEnd()) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else if (c == '#') {
        while (!AtEnd() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  // The Lark name of a GBNF rule: lower case (upper case would make it a Lark terminal), '-' as
  // '_', made unique when two GBNF names would collide.
  std::string LarkName(const std::string& gbnf) {
    auto it = names_.find(gbnf);
    if (it != names_.end()) return it->second;
    std::string n;
    for (char c : gbnf) {
      if (c >= 'A' && c <= 'Z') {
        n.push_back(static_cast<char>(c - 'A' + 'a'));
      } else if (c == '-') {
        n.push_back('_');
      } else {
        n.push_back(c);
      }
    }
    if (n.empty() || (n[0] >= '0' && n[0] <= '9') || n[0] == '_') n = "r" + n;
    std::string unique = n;
    for (int k = 2; taken_.count(unique); ++k) unique = n + "_" + std::to_string(k);
    taken_.insert(unique);
    names_[gbnf] = unique;
    return unique;
  }

  Result<std::string> ParseName() {
    const size_t start = pos_;
    while (!AtEnd() && IsNameChar(s_[pos_])) ++pos_;
    if (pos_ == start) return Fail("expected a rule name");
    return std::string(s_.substr(start, pos_ - start));
  }

  Status ParseRule() {
    KINFER_ASSIGN_OR_RETURN(std::string name, ParseName());
    SkipSpace(false);
    if (s_.substr(pos_, 3) != "::=") return Fail("expected '::=' after the rule name");
    pos_ += 3;
    SkipSpace(true);
    if (defined_.count(name)) return Fail(fmt::format("rule '{}' is defined twice", name));
    defined_.insert(name);
    const std::string lark = LarkName(name);
    KINFER_ASSIGN_OR_RETURN(std::string body, ParseAlternates(0));
    if (!AtEnd() && Peek() != '\n') return Fail(fmt::format("unexpected '{}'", Peek()));
    rules_.push_back(lark + ": " + body);
    return Status::Ok();
  }

  Result<std::string> ParseAlternates(int depth) {
    if (depth > kMaxDepth) return Fail("groups nested too deeply");
    KINFER_ASSIGN_OR_RETURN(std::string out, ParseSequence(depth));
    while (Peek() == '|') {
      ++pos_;
      SkipSpace(true);
      KINFER_ASSIGN_OR_RETURN(std::string seq, ParseSequence(depth));
      out += " | " + seq;
    }
    return out;
  }

  // Items up to '|', ')' or (at the top level) the end of the line.
  Result<std::string> ParseSequence(int depth) {
    std::string out;
    int items = 0;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '|' || c == ')' || c == '\n') break;
      KINFER_ASSIGN_OR_RETURN(std::string item, ParseItem(depth));
      if (!out.empty()) out += " ";
      out += item;
      ++items;
      SkipSpace(depth > 0);
    }
    if (items == 0) return std::string("\"\"");
    return out;
  }

  Result<std::string> ParseItem(int depth) {
    std::string atom;
    const char c = Peek();
    if (c == '"') {
      KINFER_ASSIGN_OR_RETURN(atom, ParseString());
    } else if (c == '[') {
      KINFER_ASSIGN_OR_RETURN(atom, ParseClass());
    } else if (c == '.') {
      ++pos_;
      atom = "/(?s:.)/";
    } else if (c == '(') {
      ++pos_;
      SkipSpace(true);
      KINFER_ASSIGN_OR_RETURN(std::string inner, ParseAlternates(depth + 1));
      if (Peek() != ')') return Fail("expected ')'");
      ++pos_;
      atom = "(" + inner + ")";
    } else if (c == '<') {
      const size_t start = pos_;
      while (!AtEnd() && s_[pos_] != '>' && s_[pos_] != '\n') ++pos_;
      if (Peek() != '>') return Fail("expected '>' closing a token reference");
      ++pos_;
      atom = std::string(s_.substr(start, pos_ - start));
    } else if (IsNameChar(c)) {
      const size_t line = Line();
      KINFER_ASSIGN_OR_RETURN(std::string name, ParseName());
      used_.emplace(name, line);
      atom = LarkName(name);
    } else if (c == '!') {
      return Fail("negated token references ('!<...>') are not supported");
    } else {
      return Fail(fmt::format("unexpected '{}'", c));
    }
    // Postfix operators.
    while (!AtEnd()) {
      const char op = Peek();
      if (op == '*' || op == '+' || op == '?') {
        ++pos_;
        atom = "(" + atom + ")" + op;
      } else if (op == '{') {
        KINFER_ASSIGN_OR_RETURN(std::string range, ParseRange());
        atom = range.empty() ? "\"\"" : "(" + atom + ")" + range;
      } else {
        break;
      }
    }
    return atom;
  }

  Result<int> ParseInt() {
    SkipSpace(false);
    const size_t start = pos_;
    long v = 0;
    while (!AtEnd() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      v = v * 10 + (s_[pos_] - '0');
      if (v > 100000) return Fail("repetition count too large (at most 100000)");
      ++pos_;
    }
    if (pos_ == start) return Fail("expected a number");
    SkipSpace(false);
    return static_cast<int>(v);
  }

  // {m}, {m,}, {m,n} in Lark's spelling; empty for {0} and {0,0}, which match only "".
  Result<std::string> ParseRange() {
    ++pos_;  // '{'
    KINFER_ASSIGN_OR_RETURN(int lo, ParseInt());
    int hi = lo;
    bool open = false;
    if (Peek() == ',') {
      ++pos_;
      SkipSpace(false);
      if (Peek() == '}') {
        open = true;
      } else {
        KINFER_ASSIGN_OR_RETURN(hi, ParseInt());
      }
    }
    if (Peek() != '}') return Fail("expected '}'");
    ++pos_;
    if (!open && hi < lo) return Fail("repetition maximum is below its minimum");
    if (open) return fmt::format("{{{},}}", lo);
    if (hi == 0) return std::string();
    return fmt::format("{{{},{}}}", lo, hi);
  }

  // One character of a literal or class, with GBNF's escapes.
  Result<char32_t> ParseChar() {
    if (AtEnd()) return Fail("unexpected end of the grammar");
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c == '\\') {
      ++pos_;
      if (AtEnd()) return Fail("unexpected end after '\\'");
      const char e = s_[pos_++];
      int digits = 0;
      switch (e) {
        case 'n':
          return U'\n';
        case 'r':
          return U'\r';
        case 't':
          return U'\t';
        case 'x':
          digits = 2;
          break;
        case 'u':
          digits = 4;
          break;
        case 'U':
          digits = 8;
          break;
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
          return static_cast<char32_t>(e);
        default:
          --pos_;
          return Fail(fmt::format("unknown escape '\\{}'", e));
      }
      uint32_t v = 0;
      for (int i = 0; i < digits; ++i) {
        const char h = Peek();
        int d = -1;
        if (h >= '0' && h <= '9') d = h - '0';
        if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
        if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
        if (d < 0) return Fail("expected a hex digit");
        v = v * 16 + static_cast<uint32_t>(d);
        ++pos_;
      }
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return Fail("not a Unicode code point");
      return static_cast<char32_t>(v);
    }
    // A UTF-8 sequence.
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + static_cast<size_t>(len) > s_.size()) return Fail("invalid UTF-8");
    char32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int i = 1; i < len; ++i) {
      const unsigned char b = static_cast<unsigned char>(s_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) return Fail("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return Fail("invalid UTF-8");
    pos_ += static_cast<size_t>(len);
    return cp;
  }

  Result<std::string> ParseString() {
    ++pos_;  // '"'
    std::string text;
    while (true) {
      if (AtEnd() || Peek() == '\n') return Fail("unterminated string literal");
      if (Peek() == '"') {
        ++pos_;
        break;
      }
      KINFER_ASSIGN_OR_RETURN(char32_t cp, ParseChar());
      if (cp == 0) return Fail("NUL in a string literal");
      AppendUtf8(cp, &text);
    }
    return Json(text).dump(-1, ' ', false, Json::error_handler_t::strict);
  }

  Result<std::string> ParseClass() {
    ++pos_;  // '['
    std::string re = "[";
    if (Peek() == '^') {
      ++pos_;
      re += "^";
    }
    int n = 0;
    while (true) {
      if (AtEnd() || Peek() == '\n') return Fail("unterminated character class");
      if (Peek() == ']') {
        ++pos_;
        break;
      }
      KINFER_ASSIGN_OR_RETURN(char32_t lo, ParseChar());
      char32_t hi = lo;
      if (Peek() == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
        ++pos_;
        KINFER_ASSIGN_OR_RETURN(hi, ParseChar());
        if (hi < lo) return Fail("character range out of order");
      }
      re += ClassChar(lo);
      if (hi != lo) re += "-" + ClassChar(hi);
      ++n;
    }
    if (n == 0) return Fail("empty character class");
    return "/" + re + "]/";
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::vector<std::string> rules_;
  std::set<std::string> defined_;
  std::map<std::string, size_t> used_;  // rule name -> first line that uses it
  std::map<std::string, std::string> names_;
  std::set<std::string> taken_;
};

}  // namespace

Result<std::string> GbnfToLark(std::string_view gbnf) { return Converter(gbnf).Run(); }

}  // namespace kinfer::structured
