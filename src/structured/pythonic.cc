#include "structured/pythonic.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/json.h"

namespace kinfer::structured {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<std::vector<PythonicCall>> Run() {
    Space();
    if (!Eat('[')) return Fail("expected '['");
    std::vector<PythonicCall> calls;
    Space();
    if (!Eat(']')) {
      while (true) {
        Space();
        PythonicCall call;
        KINFER_ASSIGN_OR_RETURN(call.name, Name());
        Space();
        if (!Eat('(')) return Fail("expected '(' after the function name");
        OrderedJson args = OrderedJson::object();
        Space();
        if (!Eat(')')) {
          while (true) {
            Space();
            KINFER_ASSIGN_OR_RETURN(std::string key, Name());
            Space();
            if (!Eat('='))
              return Fail("expected '=' after an argument name (keyword arguments only)");
            Space();
            KINFER_ASSIGN_OR_RETURN(OrderedJson v, Value(0));
            args[key] = std::move(v);
            Space();
            if (Eat(',')) {
              Space();
              if (Eat(')')) break;
              continue;
            }
            if (Eat(')')) break;
            return Fail("expected ',' or ')'");
          }
        }
        call.arguments = args.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
        calls.push_back(std::move(call));
        Space();
        if (Eat(',')) {
          Space();
          if (Eat(']')) break;
          continue;
        }
        if (Eat(']')) break;
        return Fail("expected ',' or ']'");
      }
    }
    Space();
    if (pos_ != s_.size()) return Fail("unexpected text after the list");
    return calls;
  }

 private:
  Status Fail(std::string_view what) const {
    return InvalidArgumentError("pythonic tool calls, offset {}: {}", pos_, what);
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  bool Eat(char c) {
    if (!AtEnd() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void Space() {
    while (!AtEnd() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  static bool NameStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static bool NameChar(char c) {
    return NameStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
  }

  Result<std::string> Name() {
    if (AtEnd() || !NameStart(s_[pos_])) return Fail("expected a name");
    const size_t start = pos_;
    while (!AtEnd() && NameChar(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  Result<OrderedJson> Value(int depth) {
    if (depth > kMaxDepth) return Fail("nested too deeply");
    if (AtEnd()) return Fail("expected a value");
    const char c = s_[pos_];
    if (c == '"' || c == '\'') return String();
    if (c == '[' || c == '(') {
      const char close = c == '[' ? ']' : ')';
      ++pos_;
      OrderedJson arr = OrderedJson::array();
      Space();
      if (Eat(close)) return arr;
      while (true) {
        Space();
        KINFER_ASSIGN_OR_RETURN(OrderedJson v, Value(depth + 1));
        arr.push_back(std::move(v));
        Space();
        if (Eat(',')) {
          Space();
          if (Eat(close)) return arr;
          continue;
        }
        if (Eat(close)) return arr;
        return Fail("expected ',' or the end of the list");
      }
    }
    if (c == '{') {
      ++pos_;
      OrderedJson obj = OrderedJson::object();
      Space();
      if (Eat('}')) return obj;
      while (true) {
        Space();
        KINFER_ASSIGN_OR_RETURN(OrderedJson k, Value(depth + 1));
        if (!k.is_string()) return Fail("dict keys must be strings");
        Space();
        if (!Eat(':')) return Fail("expected ':'");
        Space();
        KINFER_ASSIGN_OR_RETURN(OrderedJson v, Value(depth + 1));
        obj[k.get<std::string>()] = std::move(v);
        Space();
        if (Eat(',')) {
          Space();
          if (Eat('}')) return obj;
          continue;
        }
        if (Eat('}')) return obj;
        return Fail("expected ',' or '}'");
      }
    }
    for (auto [word, value] : {std::pair<const char*, OrderedJson>{"True", true},
                               std::pair<const char*, OrderedJson>{"False", false},
                               std::pair<const char*, OrderedJson>{"None", nullptr}}) {
      const std::string_view w(word);
      if (s_.substr(pos_, w.size()) == w &&
          (pos_ + w.size() == s_.size() || !NameChar(s_[pos_ + w.size()]))) {
        pos_ += w.size();
        return value;
      }
    }
    return Number();
  }

  Result<OrderedJson> Number() {
    const size_t start = pos_;
    if (!AtEnd() && (s_[pos_] == '-' || s_[pos_] == '+')) ++pos_;
    bool is_float = false, digits = false;
    while (!AtEnd()) {
      const char c = s_[pos_];
      if (c >= '0' && c <= '9') {
        digits = true;
      } else if (c == '.' || c == 'e' || c == 'E' ||
                 ((c == '-' || c == '+') && (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E'))) {
        is_float = true;
      } else if (c != '_') {
        break;
      }
      ++pos_;
    }
    if (!digits) return Fail("expected a value");
    std::string text;
    for (char c : s_.substr(start, pos_ - start)) {
      if (c != '_' && c != '+') text.push_back(c);
    }
    char* end = nullptr;
    if (!is_float) {
      errno = 0;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (*end == '\0' && errno == 0) return OrderedJson(v);
    }
    const double d = std::strtod(text.c_str(), &end);
    if (*end != '\0' || text.empty()) return Fail("malformed number");
    if (!std::isfinite(d)) return Fail("number out of range");
    return OrderedJson(d);
  }

  Result<OrderedJson> String() {
    const char q = s_[pos_++];
    std::string out;
    while (true) {
      if (AtEnd()) return Fail("unterminated string");
      const char c = s_[pos_++];
      if (c == q) break;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (AtEnd()) return Fail("unterminated string");
      const char e = s_[pos_++];
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
        case '0':
          out.push_back('\0');
          break;
        case '\\':
        case '\'':
        case '"':
          out.push_back(e);
          break;
        case '\n':
          break;  // a line continuation
        case 'x':
        case 'u': {
          const int n = e == 'x' ? 2 : 4;
          if (pos_ + static_cast<size_t>(n) > s_.size()) return Fail("bad escape");
          uint32_t v = 0;
          for (int i = 0; i < n; ++i) {
            const char h = s_[pos_++];
            int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (d < 0) return Fail("bad escape");
            v = v * 16 + static_cast<uint32_t>(d);
          }
          if (v >= 0xD800 && v <= 0xDFFF) return Fail("bad escape");
          if (v < 0x80) {
            out.push_back(static_cast<char>(v));
          } else if (v < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (v >> 6)));
            out.push_back(static_cast<char>(0x80 | (v & 0x3F)));
          } else {
            out.push_back(static_cast<char>(0xE0 | (v >> 12)));
            out.push_back(static_cast<char>(0x80 | ((v >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (v & 0x3F)));
          }
          break;
        }
        default:
          out.push_back('\\');
          out.push_back(e);
      }
    }
    return OrderedJson(out);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

Result<std::vector<PythonicCall>> ParsePythonicCalls(std::string_view text) {
  return Parser(text).Run();
}

}  // namespace kinfer::structured
