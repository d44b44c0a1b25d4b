#include "tokenizer/jinja/builtins.h"

#include <fmt/format.h>
#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "core/json.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer::jinja {
namespace {

// ---- strings as Python sees them (code points) ----

std::u32string ToU32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    Utf8Char c = DecodeUtf8(s, i);
    out.push_back(c.cp);
    i += c.len;
  }
  return out;
}

std::string FromU32(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(c, &out);
  return out;
}

size_t CharCount(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

bool PySpace(char32_t c) { return IsWhitespace(c) || (c >= 0x1C && c <= 0x1F); }

char32_t Upper(char32_t c) {
  return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}
char32_t Lower(char32_t c) {
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}
bool IsCased(char32_t c) { return Upper(c) != c || Lower(c) != c; }

std::string MapChars(std::string_view s, char32_t (*f)(char32_t)) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    Utf8Char c = DecodeUtf8(s, i);
    AppendUtf8(f(c.cp), &out);
    i += c.len;
  }
  return out;
}

std::string Title(std::string_view s) {
  std::u32string u = ToU32(s);
  bool prev_cased = false;
  for (char32_t& c : u) {
    const bool cased = IsCased(c);
    c = cased ? (prev_cased ? Lower(c) : Upper(c)) : c;
    prev_cased = cased;
  }
  return FromU32(u);
}

std::string Capitalize(std::string_view s) {
  std::u32string u = ToU32(s);
  for (size_t i = 0; i < u.size(); ++i) u[i] = i == 0 ? Upper(u[i]) : Lower(u[i]);
  return FromU32(u);
}

std::string Strip(std::string_view s, const Value* chars, bool left, bool right) {
  std::u32string u = ToU32(s);
  std::u32string set;
  const bool custom = chars != nullptr && !chars->is_none() && !chars->is_undefined();
  if (custom) set = ToU32(chars->Str());
  auto strip = [&](char32_t c) {
    return custom ? set.find(c) != std::u32string::npos : PySpace(c);
  };
  size_t b = 0, e = u.size();
  if (left) {
    while (b < e && strip(u[b])) ++b;
  }
  if (right) {
    while (e > b && strip(u[e - 1])) --e;
  }
  return FromU32(std::u32string_view(u).substr(b, e - b));
}

ValueList Split(const std::string& s, const Value* sep, int64_t maxsplit, bool from_right) {
  ValueList out;
  if (sep == nullptr || sep->is_none()) {
    // Runs of whitespace; no empty strings.
    std::u32string u = ToU32(s);
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && PySpace(u[i])) ++i;
      if (i >= u.size()) break;
      size_t j = i;
      while (j < u.size() && !PySpace(u[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      if (!from_right) {
        size_t k = static_cast<size_t>(maxsplit);
        std::u32string rest = u.substr(words[k].first);
        size_t e = rest.size();
        while (e > 0 && PySpace(rest[e - 1])) --e;
        words.resize(k);
        for (auto& [b, e2] : words) out.emplace_back(FromU32(u.substr(b, e2 - b)));
        out.emplace_back(FromU32(rest.substr(0, e)));
        return out;
      }
      const size_t keep = words.size() - static_cast<size_t>(maxsplit);
      std::u32string head = u.substr(0, words[keep - 1].second);
      size_t b = 0;
      while (b < head.size() && PySpace(head[b])) ++b;
      out.emplace_back(FromU32(head.substr(b)));
      for (size_t k = keep; k < words.size(); ++k) {
        out.emplace_back(FromU32(u.substr(words[k].first, words[k].second - words[k].first)));
      }
      return out;
    }
    for (auto& [b, e] : words) out.emplace_back(FromU32(u.substr(b, e - b)));
    return out;
  }
  if (!sep->is_string()) throw Error("must be str or None, not " + sep->TypeName());
  const std::string& d = sep->s();
  if (d.empty()) throw Error("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t pos = 0;
    int64_t n = 0;
    while (maxsplit < 0 || n < maxsplit) {
      const size_t hit = s.find(d, pos);
      if (hit == std::string::npos) break;
      parts.push_back(s.substr(pos, hit - pos));
      pos = hit + d.size();
      ++n;
    }
    parts.push_back(s.substr(pos));
  } else {
    size_t end = s.size();
    int64_t n = 0;
    while (maxsplit < 0 || n < maxsplit) {
      if (end < d.size()) break;
      const size_t hit = s.rfind(d, end - d.size());
      if (hit == std::string::npos) break;
      parts.push_back(s.substr(hit + d.size(), end - hit - d.size()));
      end = hit;
      ++n;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

std::vector<std::string> SplitLines(const std::string& s, bool keepends) {
  std::vector<std::string> out;
  std::u32string u = ToU32(s);
  size_t start = 0, i = 0;
  auto is_break = [](char32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
           c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
  };
  while (i < u.size()) {
    if (is_break(u[i])) {
      size_t end = i + 1;
      if (u[i] == '\r' && end < u.size() && u[end] == '\n') ++end;
      out.push_back(FromU32(u.substr(start, (keepends ? end : i) - start)));
      start = i = end;
    } else {
      ++i;
    }
  }
  if (start < u.size()) out.push_back(FromU32(u.substr(start)));
  return out;
}

std::string Replace(const std::string& s, const std::string& old, const std::string& repl,
                    int64_t count, Interpreter& in) {
  std::string out;
  if (old.empty()) {
    std::u32string u = ToU32(s);
    int64_t n = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
      }
      if (i < u.size()) AppendUtf8(u[i], &out);
      in.CheckSize(out.size());
    }
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += repl;
    in.CheckSize(out.size());
    pos = hit + old.size();
    ++n;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// ---- argument helpers ----

const Value* Arg(const CallArgs& a, size_t index, std::string_view name) {
  if (index < a.positional.size()) return &a.positional[index];
  return a.Keyword(name);
}

Value ArgOr(const CallArgs& a, size_t index, std::string_view name, const Value& def) {
  const Value* v = Arg(a, index, name);
  return v != nullptr ? *v : def;
}

int64_t IntArg(const CallArgs& a, size_t index, std::string_view name, int64_t def) {
  const Value* v = Arg(a, index, name);
  if (v == nullptr || v->is_none()) return def;
  if (v->is_float()) return static_cast<int64_t>(v->f());
  if (!v->is_number()) {
    throw Error(fmt::format("'{}' must be an integer, not {}", name, v->TypeName()));
  }
  return v->i();
}

bool BoolArg(const CallArgs& a, size_t index, std::string_view name, bool def) {
  const Value* v = Arg(a, index, name);
  return v == nullptr ? def : v->Truthy();
}

std::string StrOf(const Value& v) { return v.is_string() ? v.s() : v.Str(); }

// Python int() of a string: optional sign and whitespace, digits with single underscores.
std::optional<int64_t> ParseInt(std::string_view s, int base) {
  std::string t = Strip(s, nullptr, true, true);
  if (t.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (t[0] == '+' || t[0] == '-') {
    neg = t[0] == '-';
    i = 1;
  }
  if (i >= t.size()) return std::nullopt;
  int64_t v = 0;
  bool prev_digit = false;
  for (; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '_' && prev_digit && i + 1 < t.size()) {
      prev_digit = false;
      continue;
    }
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      d = (c | 0x20) - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) {
      return std::nullopt;
    }
    prev_digit = true;
  }
  if (!prev_digit) return std::nullopt;
  return neg ? -v : v;
}

std::optional<double> ParseFloat(std::string_view s) {
  std::string t = Strip(s, nullptr, true, true);
  if (t.empty()) return std::nullopt;
  std::string lower = MapChars(t, Lower);
  if (lower == "nan" || lower == "+nan" || lower == "-nan") return std::nan("");
  if (lower == "inf" || lower == "+inf" || lower == "infinity" || lower == "+infinity") {
    return std::numeric_limits<double>::infinity();
  }
  if (lower == "-inf" || lower == "-infinity") return -std::numeric_limits<double>::infinity();
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  if (t.find_first_of("xXpP") != std::string::npos) return std::nullopt;  // no hex floats
  return v;
}

// jinja2's make_attrgetter: "a.b.0" looks up item by item.
Value AttrPath(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    if (dot == std::string::npos) dot = path.size();
    const std::string part = path.substr(pos, dot - pos);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    cur = digits ? GetItem(cur, Value(static_cast<int64_t>(std::stoll(part))))
                 : GetItem(cur, Value(part));
    pos = dot + 1;
  }
  return cur;
}

Value Lowered(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(MapChars(v.s(), Lower));
  return v;
}

void StableSort(ValueList* items, const std::function<int(const Value&, const Value&)>& cmp,
                bool reverse) {
  std::stable_sort(items->begin(), items->end(), [&](const Value& a, const Value& b) {
    const int c = cmp(a, b);
    return reverse ? c > 0 : c < 0;
  });
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

size_t Length(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return 0;
    case Value::Type::kString:
      return CharCount(v.s());
    case Value::Type::kList:
      if (v.is_iterator()) break;
      return v.list().size();
    case Value::Type::kDict:
    case Value::Type::kNamespace:
      return v.dict().size();
    default:
      break;
  }
  throw Error(fmt::format("object of type '{}' has no len()", v.TypeName()));
}

[[noreturn]] void Unsafe(const std::string& method, const Value& obj) {
  throw Error(
      fmt::format("access to attribute '{}' of '{}' object is unsafe.", method, obj.TypeName()));
}

bool IsUnsafeMethod(const Value& obj, const std::string& name) {
  static const std::unordered_set<std::string> kList = {"append", "pop",   "extend", "insert",
                                                        "remove", "clear", "sort",   "reverse"};
  static const std::unordered_set<std::string> kDict = {"pop", "popitem", "update", "clear",
                                                        "setdefault"};
  if (obj.is_list()) return obj.seq_kind() == Value::SeqKind::kList && kList.count(name) > 0;
  if (obj.is_dict()) return kDict.count(name) > 0;
  return false;
}

bool IsMethod(const Value& obj, const std::string& name) {
  static const std::unordered_set<std::string> kStr = {
      "strip",        "lstrip",      "rstrip",  "split",   "rsplit",    "splitlines", "startswith",
      "endswith",     "replace",     "upper",   "lower",   "title",     "capitalize", "swapcase",
      "find",         "rfind",       "index",   "rindex",  "count",     "join",       "isdigit",
      "isalpha",      "isalnum",     "isspace", "isupper", "islower",   "isnumeric",  "isdecimal",
      "center",       "ljust",       "rjust",   "zfill",   "partition", "rpartition", "casefold",
      "removeprefix", "removesuffix"};
  static const std::unordered_set<std::string> kDict = {"get", "items", "keys", "values", "copy"};
  static const std::unordered_set<std::string> kList = {"index", "count", "copy"};
  if (obj.is_string()) return kStr.count(name) > 0;
  if (obj.is_dict()) return kDict.count(name) > 0;
  if (obj.is_indexable()) return kList.count(name) > 0;
  return false;
}

std::string Pad(const std::string& s, int64_t width, const Value* fill, int where,
                Interpreter& in) {
  const std::string f = fill != nullptr && fill->is_string() ? fill->s() : " ";
  if (CharCount(f) != 1) throw Error("the fill character must be exactly one character long");
  const int64_t n = static_cast<int64_t>(CharCount(s));
  if (width <= n) return s;
  in.CheckSize(static_cast<size_t>(width) * f.size());
  const int64_t pad = width - n;
  int64_t left = 0;
  if (where == 0) left = pad / 2 + (pad & width & 1);  // str.center
  if (where > 0) left = pad;                           // rjust
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += f;
  out += s;
  for (int64_t i = left; i < pad; ++i) out += f;
  return out;
}

Value StrMethod(Interpreter& in, const std::string& s, const std::string& name, const CallArgs& a) {
  const Value* a0 = Arg(a, 0, "");
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value(Strip(s, Arg(a, 0, "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    return Value::List(Split(s, Arg(a, 0, "sep"), IntArg(a, 1, "maxsplit", -1), name == "rsplit"));
  }
  if (name == "splitlines") {
    ValueList out;
    for (auto& l : SplitLines(s, BoolArg(a, 0, "keepends", false))) out.emplace_back(l);
    return Value::List(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    if (a0 == nullptr) throw Error(fmt::format("{}() takes at least 1 argument", name));
    std::vector<std::string> options;
    if (a0->is_string()) {
      options.push_back(a0->s());
    } else if (a0->is_tuple()) {
      for (const auto& v : a0->list()) {
        if (!v.is_string()) throw Error("tuple for startswith must only contain str");
        options.push_back(v.s());
      }
    } else {
      throw Error(
          fmt::format("{} first arg must be str or a tuple of str, not {}", name, a0->TypeName()));
    }
    for (const auto& o : options) {
      if (name == "startswith"
              ? s.compare(0, o.size(), o) == 0
              : s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0) {
        return Value(true);
      }
    }
    return Value(false);
  }
  if (name == "replace") {
    const Value* old = Arg(a, 0, "old");
    const Value* repl = Arg(a, 1, "new");
    if (old == nullptr || repl == nullptr || !old->is_string() || !repl->is_string()) {
      throw Error("replace() arguments must be str");
    }
    return Value(Replace(s, old->s(), repl->s(), IntArg(a, 2, "count", -1), in));
  }
  if (name == "upper") return Value(MapChars(s, Upper));
  if (name == "lower" || name == "casefold") return Value(MapChars(s, Lower));
  if (name == "title") return Value(Title(s));
  if (name == "capitalize") return Value(Capitalize(s));
  if (name == "swapcase") {
    std::u32string u = ToU32(s);
    for (auto& c : u) c = Upper(c) != c ? Upper(c) : Lower(c);
    return Value(FromU32(u));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    if (a0 == nullptr || !a0->is_string()) throw Error(fmt::format("{}() needs a str", name));
    const std::u32string u = ToU32(s), sub = ToU32(a0->s());
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(u.size() + 1));
      int64_t n = 0;
      for (size_t p = u.find(sub); p != std::u32string::npos; p = u.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    const size_t p = name[0] == 'r' ? u.rfind(sub) : u.find(sub);
    if (p == std::u32string::npos) {
      if (name == "index" || name == "rindex") throw Error("substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(p));
  }
  if (name == "join") {
    if (a0 == nullptr) throw Error("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const auto& v : Iterate(*a0)) {
      in.Step();
      if (!v.is_string()) {
        throw Error(fmt::format("sequence item: expected str instance, {} found", v.TypeName()));
      }
      if (!first) out += s;
      first = false;
      out += v.s();
      in.CheckSize(out.size());
    }
    return Value(std::move(out));
  }
  if (name.rfind("is", 0) == 0) {
    const std::u32string u = ToU32(s);
    if (u.empty()) return Value(false);
    bool all = true, any_cased = false;
    for (char32_t c : u) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      bool ok;
      if (name == "isdigit" || name == "isdecimal") {
        ok = cat == UTF8PROC_CATEGORY_ND;
      } else if (name == "isnumeric") {
        ok = IsNumeric(c);
      } else if (name == "isalpha") {
        ok = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
      } else if (name == "isalnum") {
        ok = IsAlphanumeric(c);
      } else if (name == "isspace") {
        ok = PySpace(c);
      } else if (name == "isupper") {
        ok = !(IsCased(c) && Upper(c) != c);
        any_cased = any_cased || IsCased(c);
      } else {  // islower
        ok = !(IsCased(c) && Lower(c) != c);
        any_cased = any_cased || IsCased(c);
      }
      all = all && ok;
    }
    if (name == "isupper" || name == "islower") return Value(all && any_cased);
    return Value(all);
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    return Value(Pad(s, IntArg(a, 0, "width", 0), Arg(a, 1, "fillchar"),
                     name == "center" ? 0 : (name == "ljust" ? -1 : 1), in));
  }
  if (name == "zfill") {
    const int64_t width = IntArg(a, 0, "width", 0);
    const int64_t n = static_cast<int64_t>(CharCount(s));
    if (width <= n) return Value(s);
    in.CheckSize(static_cast<size_t>(width));
    std::string sign, rest = s;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
      sign = s.substr(0, 1);
      rest = s.substr(1);
    }
    return Value(sign + std::string(static_cast<size_t>(width - n), '0') + rest);
  }
  if (name == "partition" || name == "rpartition") {
    if (a0 == nullptr || !a0->is_string() || a0->s().empty()) throw Error("empty separator");
    const size_t p = name == "partition" ? s.find(a0->s()) : s.rfind(a0->s());
    if (p == std::string::npos) {
      return name == "partition" ? Value::List({Value(s), Value(""), Value("")}, true)
                                 : Value::List({Value(""), Value(""), Value(s)}, true);
    }
    return Value::List({Value(s.substr(0, p)), *a0, Value(s.substr(p + a0->s().size()))}, true);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    if (a0 == nullptr || !a0->is_string()) throw Error(fmt::format("{}() needs a str", name));
    const std::string& x = a0->s();
    if (name == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value(s.substr(x.size()));
    if (name == "removesuffix" && s.size() >= x.size() &&
        s.compare(s.size() - x.size(), x.size(), x) == 0) {
      return Value(s.substr(0, s.size() - x.size()));
    }
    return Value(s);
  }
  throw Error(fmt::format("'str' object has no attribute '{}'", name));
}

Value MakeDictValue(const std::vector<std::pair<Value, Value>>& items) {
  auto d = std::make_shared<Dict>();
  for (const auto& [k, v] : items) d->Set(k, v);
  return Value::MakeDict(std::move(d));
}

// ---- filters ----

using FilterFn = Value (*)(Interpreter&, const Value&, const CallArgs&);

ValueList Items(const Value& v) {
  ValueList out;
  if (v.is_undefined()) return out;
  if (!v.is_mapping())
    throw Error(fmt::format("can only get item pairs from a mapping, not {}", v.TypeName()));
  for (const auto& [k, val] : v.dict().items()) out.push_back(Value::List({k, val}, true));
  return out;
}

Value SelectOrReject(Interpreter& in, const Value& input, const CallArgs& a, bool select,
                     bool by_attr) {
  ValueList out;
  std::string attr;
  size_t test_index = 0;
  if (by_attr) {
    const Value* at = Arg(a, 0, "attribute");
    if (at == nullptr || !at->is_string()) throw Error("selectattr/rejectattr need an attribute");
    attr = at->s();
    test_index = 1;
  }
  if (!input.Truthy()) return Value::Sequence({}, Value::SeqKind::kGenerator);  // `if seq:`
  const Value* test = test_index < a.positional.size() ? &a.positional[test_index] : nullptr;
  CallArgs test_args;
  for (size_t i = test_index + 1; i < a.positional.size(); ++i) {
    test_args.positional.push_back(a.positional[i]);
  }
  for (const auto& item : Iterate(input)) {
    in.Step();
    const Value subject = by_attr ? AttrPath(item, attr) : item;
    bool ok;
    if (test == nullptr) {
      ok = subject.Truthy();
    } else {
      if (!test->is_string()) throw Error("test name must be a string");
      ok = ApplyTest(in, test->s(), subject, test_args);
    }
    if (ok == select) out.push_back(item);
  }
  return Value::Sequence(std::move(out), Value::SeqKind::kGenerator);
}

std::string IndentText(const std::string& s, const Value* width, bool first, bool blank) {
  std::string indention = "    ";
  if (width != nullptr) {
    if (width->is_string()) {
      indention = width->s();
    } else if (width->is_number()) {
      const int64_t w = width->is_float() ? static_cast<int64_t>(width->f()) : width->i();
      indention = std::string(static_cast<size_t>(std::clamp<int64_t>(w, 0, 1 << 16)), ' ');
    }
  }
  std::vector<std::string> lines = SplitLines(s + "\n", false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += "\n" + indention;
      rv += lines[i];
    }
  } else if (!lines.empty()) {
    rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
    }
  }
  if (first) rv = indention + rv;
  return rv;
}

const std::unordered_map<std::string, FilterFn>& Filters() {
  static const std::unordered_map<std::string, FilterFn> kFilters = {
      {"abs",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         v.Defined();
         if (v.is_float()) return Value(std::fabs(v.f()));
         if (v.is_number()) {
           if (v.i() == INT64_MIN) throw Error("integer overflow");
           return Value(v.i() < 0 ? -v.i() : v.i());
         }
         throw Error(fmt::format("bad operand type for abs(): '{}'", v.TypeName()));
       }},
      {"attr",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         const Value name = ArgOr(a, 0, "name", Value());
         return GetAttr(v, StrOf(name));
       }},
      {"batch",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const int64_t n = IntArg(a, 0, "linecount", 1);
         if (n <= 0) throw Error("batch size must be positive");
         const Value* fill = Arg(a, 1, "fill_with");
         ValueList out, cur;
         for (const auto& item : Iterate(v)) {
           in.Step();
           cur.push_back(item);
           if (static_cast<int64_t>(cur.size()) == n) {
             out.push_back(Value::List(std::move(cur)));
             cur.clear();
           }
         }
         if (!cur.empty()) {
           if (fill != nullptr && !fill->is_none()) {
             while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
           }
           out.push_back(Value::List(std::move(cur)));
         }
         return Value::Sequence(std::move(out), Value::SeqKind::kGenerator);
       }},
      {"capitalize",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value(Capitalize(StrOf(v)));
       }},
      {"center",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         return Value(Pad(StrOf(v), IntArg(a, 0, "width", 80), nullptr, 0, in));
       }},
      {"length",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value(static_cast<int64_t>(Length(v)));
       }},
      {"default",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         const bool boolean = BoolArg(a, 1, "boolean", false);
         if (v.is_undefined() || (boolean && !v.Truthy())) {
           return ArgOr(a, 0, "default_value", Value(""));
         }
         return v;
       }},
      {"dictsort",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const bool cs = BoolArg(a, 0, "case_sensitive", false);
         const std::string by = StrOf(ArgOr(a, 1, "by", Value("key")));
         const bool reverse = BoolArg(a, 2, "reverse", false);
         if (by != "key" && by != "value")
           throw Error("You can only sort by either 'key' or 'value'");
         ValueList items = Items(v.Defined());
         const size_t pos = by == "key" ? 0 : 1;
         for (size_t i = 0; i < items.size(); ++i) in.Step();
         StableSort(
             &items,
             [&](const Value& x, const Value& y) {
               return Compare(Lowered(x.list()[pos], cs), Lowered(y.list()[pos], cs));
             },
             reverse);
         return Value::List(std::move(items));
       }},
      {"escape",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         if (v.is_markup()) return v;
         return Value::Markup(HtmlEscape(StrOf(v)));
       }},
      {"forceescape",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value::Markup(HtmlEscape(StrOf(v)));
       }},
      {"first",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         ValueList items = Iterate(v);
         if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
         return items.front();
       }},
      {"float",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         Value def = ArgOr(a, 0, "default", Value(0.0));
         if (v.is_number()) return Value(v.AsDouble());
         if (v.is_string()) {
           if (auto f = ParseFloat(v.s())) return Value(*f);
         }
         return def;
       }},
      {"from_json",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         if (!v.is_string()) throw Error("from_json needs a string");
         auto j = nlohmann::ordered_json::parse(v.s(), nullptr, false);
         if (j.is_discarded()) throw Error("from_json: not valid JSON");
         return FromJson(j);
       }},
      {"indent",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         std::string r = IndentText(StrOf(v), Arg(a, 0, "width"), BoolArg(a, 1, "first", false),
                                    BoolArg(a, 2, "blank", false));
         in.CheckSize(r.size());
         return Value(std::move(r));
       }},
      {"int",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         Value def = ArgOr(a, 0, "default", Value(0));
         const int64_t base = IntArg(a, 1, "base", 10);
         if (v.is_float()) {
           if (!std::isfinite(v.f()) || std::fabs(v.f()) > 9.2e18) return def;
           return Value(static_cast<int64_t>(v.f()));
         }
         if (v.is_number()) return Value(v.i());
         if (v.is_string()) {
           if (base < 2 || base > 36) throw Error("int() base must be >= 2 and <= 36");
           if (auto i = ParseInt(v.s(), static_cast<int>(base))) return Value(*i);
           if (auto f = ParseFloat(v.s()); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) {
             return Value(static_cast<int64_t>(*f));
           }
         }
         return def;
       }},
      {"items",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value::Sequence(Items(v), Value::SeqKind::kGenerator);
       }},
      {"join",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const std::string sep = StrOf(ArgOr(a, 0, "d", Value("")));
         const Value* attr = Arg(a, 1, "attribute");
         std::string out;
         bool first = true;
         for (const auto& item : Iterate(v)) {
           in.Step();
           if (!first) out += sep;
           first = false;
           out += StrOf(attr != nullptr && !attr->is_none() ? AttrPath(item, StrOf(*attr)) : item);
           in.CheckSize(out.size());
         }
         return Value(std::move(out));
       }},
      {"last",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         if (v.is_iterator())
           throw Error(fmt::format("'{}' object is not reversible", v.TypeName()));
         ValueList items = Iterate(v);
         if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
         return items.back();
       }},
      {"list",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         if (v.is_number() || v.is_none()) {
           throw Error(fmt::format("'{}' object is not iterable", v.TypeName()));
         }
         return Value::List(Iterate(v));
       }},
      {"lower",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value(MapChars(StrOf(v), Lower));
       }},
      {"map",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         ValueList out;
         if (!v.Truthy()) return Value::Sequence({}, Value::SeqKind::kGenerator);  // `if seq:`
         if (const Value* attr = a.Keyword("attribute")) {
           const Value* def = a.Keyword("default");
           for (const auto& item : Iterate(v)) {
             in.Step();
             Value x = AttrPath(item, StrOf(*attr));
             out.push_back(x.is_undefined() && def != nullptr ? *def : x);
           }
           return Value::Sequence(std::move(out), Value::SeqKind::kGenerator);
         }
         if (a.positional.empty() || !a.positional[0].is_string()) {
           throw Error("map needs a filter name or attribute=");
         }
         const std::string filter = a.positional[0].s();
         if (!IsFilter(filter)) throw Error(fmt::format("no filter named '{}'", filter));
         CallArgs rest;
         rest.positional.assign(a.positional.begin() + 1, a.positional.end());
         rest.keyword = a.keyword;
         for (const auto& item : Iterate(v)) {
           in.Step();
           out.push_back(ApplyFilter(in, filter, item, rest));
         }
         return Value::Sequence(std::move(out), Value::SeqKind::kGenerator);
       }},
      {"max",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const bool cs = BoolArg(a, 0, "case_sensitive", false);
         const Value* attr = Arg(a, 1, "attribute");
         ValueList items = Iterate(v);
         if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
         Value best = items[0];
         for (const auto& x : items) {
           in.Step();
           auto key = [&](const Value& y) {
             return Lowered(attr ? AttrPath(y, StrOf(*attr)) : y, cs);
           };
           if (Compare(key(x), key(best)) > 0) best = x;
         }
         return best;
       }},
      {"min",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const bool cs = BoolArg(a, 0, "case_sensitive", false);
         const Value* attr = Arg(a, 1, "attribute");
         ValueList items = Iterate(v);
         if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
         Value best = items[0];
         for (const auto& x : items) {
           in.Step();
           auto key = [&](const Value& y) {
             return Lowered(attr ? AttrPath(y, StrOf(*attr)) : y, cs);
           };
           if (Compare(key(x), key(best)) < 0) best = x;
         }
         return best;
       }},
      {"pprint",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value { return Value(v.Repr()); }},
      {"reject",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         return SelectOrReject(in, v, a, false, false);
       }},
      {"rejectattr",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         return SelectOrReject(in, v, a, false, true);
       }},
      {"replace",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const Value* old = Arg(a, 0, "old");
         const Value* repl = Arg(a, 1, "new");
         if (old == nullptr || repl == nullptr) throw Error("replace needs old and new");
         // Markup.replace escapes its arguments.
         auto arg = [&](const Value& x) {
           return v.is_markup() && !x.is_markup() ? HtmlEscape(StrOf(x)) : StrOf(x);
         };
         return Value(Replace(StrOf(v), arg(*old), arg(*repl), IntArg(a, 2, "count", -1), in));
       }},
      {"reverse",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         if (v.is_string()) {
           std::u32string u = ToU32(v.s());
           std::reverse(u.begin(), u.end());
           return Value(FromU32(u));
         }
         if (v.is_iterator())
           throw Error(fmt::format("'{}' object is not reversible", v.TypeName()));
         ValueList items = Iterate(v);
         std::reverse(items.begin(), items.end());
         return Value::Sequence(std::move(items), Value::SeqKind::kReversed);
       }},
      {"round",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         const int64_t precision = IntArg(a, 0, "precision", 0);
         const std::string method = StrOf(ArgOr(a, 1, "method", Value("common")));
         if (!v.is_number()) throw Error("round needs a number");
         const double scale = std::pow(10.0, static_cast<double>(precision));
         double x = v.AsDouble() * scale;
         if (method == "common") {
           x = std::nearbyint(x);
         } else if (method == "ceil") {
           x = std::ceil(x);
         } else if (method == "floor") {
           x = std::floor(x);
         } else {
           throw Error("method must be common, ceil or floor");
         }
         return Value(x / scale);
       }},
      {"safe",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return v.is_markup() ? v : Value::Markup(StrOf(v));
       }},
      {"select",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         return SelectOrReject(in, v, a, true, false);
       }},
      {"selectattr",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         return SelectOrReject(in, v, a, true, true);
       }},
      {"sort",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const bool reverse = BoolArg(a, 0, "reverse", false);
         const bool cs = BoolArg(a, 1, "case_sensitive", false);
         const Value* attr = Arg(a, 2, "attribute");
         ValueList items = Iterate(v);
         for (size_t i = 0; i < items.size(); ++i) in.Step();
         StableSort(
             &items,
             [&](const Value& x, const Value& y) {
               auto key = [&](const Value& z) {
                 return Lowered(attr && !attr->is_none() ? AttrPath(z, StrOf(*attr)) : z, cs);
               };
               return Compare(key(x), key(y));
             },
             reverse);
         return Value::List(std::move(items));
       }},
      {"string",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value { return Value(StrOf(v)); }},
      {"striptags",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         std::string s = StrOf(v), out;
         bool in_tag = false;
         for (char c : s) {
           if (c == '<') in_tag = true;
           if (!in_tag) out.push_back(c);
           if (c == '>') in_tag = false;
         }
         ValueList words = Split(out, nullptr, -1, false);
         std::string joined;
         for (size_t i = 0; i < words.size(); ++i) joined += (i ? " " : "") + words[i].s();
         return Value(joined);
       }},
      {"sum",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const Value* attr = Arg(a, 0, "attribute");
         Value total = ArgOr(a, 1, "start", Value(0));
         for (const auto& x : Iterate(v)) {
           in.Step();
           total =
               BinaryOp(in, "+", total, attr && !attr->is_none() ? AttrPath(x, StrOf(*attr)) : x);
         }
         return total;
       }},
      {"title",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value(Title(StrOf(v)));
       }},
      {"tojson",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         const Value* indent = Arg(a, 0, "indent");
         int ind = -1;
         if (indent != nullptr && !indent->is_none()) {
           if (!indent->is_number()) throw Error("tojson indent must be an integer");
           ind = static_cast<int>(std::clamp<int64_t>(indent->i(), 0, 64));
         }
         return Value(ToJson(v, ind, BoolArg(a, 1, "sort_keys", false)));
       }},
      {"trim",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         return Value(Strip(StrOf(v), Arg(a, 0, "chars"), true, true));
       }},
      {"truncate",
       [](Interpreter&, const Value& v, const CallArgs& a) -> Value {
         const std::u32string s = ToU32(StrOf(v));
         const int64_t length = IntArg(a, 0, "length", 255);
         const bool killwords = BoolArg(a, 1, "killwords", false);
         const std::u32string end = ToU32(StrOf(ArgOr(a, 2, "end", Value("..."))));
         const int64_t leeway = IntArg(a, 3, "leeway", 5);
         if (length < static_cast<int64_t>(end.size())) throw Error("expected length >= len(end)");
         if (static_cast<int64_t>(s.size()) <= length + leeway) return Value(FromU32(s));
         std::u32string cut = s.substr(0, static_cast<size_t>(length) - end.size());
         if (!killwords) {
           const size_t sp = cut.rfind(U' ');
           if (sp != std::u32string::npos) cut = cut.substr(0, sp);
         }
         return Value(FromU32(cut + end));
       }},
      {"unique",
       [](Interpreter& in, const Value& v, const CallArgs& a) -> Value {
         const bool cs = BoolArg(a, 0, "case_sensitive", false);
         const Value* attr = Arg(a, 1, "attribute");
         ValueList out, seen;
         for (const auto& x : Iterate(v)) {
           const Value key = Lowered(attr && !attr->is_none() ? AttrPath(x, StrOf(*attr)) : x, cs);
           bool dup = false;
           for (const auto& s : seen) {
             in.Step();
             if (Equals(s, key)) {
               dup = true;
               break;
             }
           }
           if (!dup) {
             seen.push_back(key);
             out.push_back(x);
           }
         }
         return Value::Sequence(std::move(out), Value::SeqKind::kGenerator);
       }},
      {"upper",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         return Value(MapChars(StrOf(v), Upper));
       }},
      {"wordcount",
       [](Interpreter&, const Value& v, const CallArgs&) -> Value {
         const std::u32string u = ToU32(StrOf(v));
         int64_t n = 0;
         bool in_word = false;
         for (char32_t c : u) {
           const bool w = IsAlphanumeric(c) || c == '_';
           if (w && !in_word) ++n;
           in_word = w;
         }
         return Value(n);
       }},
  };
  return kFilters;
}

const std::unordered_map<std::string, std::string>& FilterAliases() {
  static const std::unordered_map<std::string, std::string> kAliases = {
      {"count", "length"}, {"d", "default"}, {"e", "escape"}};
  return kAliases;
}

// jinja2 filters this interpreter knows by name but does not run (the parser accepts them, as
// jinja2 does; a template that reaches one gets an error).
const std::unordered_set<std::string>& UnsupportedFilters() {
  static const std::unordered_set<std::string> kNames = {"filesizeformat", "format",   "groupby",
                                                         "random",         "slice",    "urlencode",
                                                         "urlize",         "wordwrap", "xmlattr"};
  return kNames;
}

bool TestImpl(Interpreter& in, const std::string& name, const Value& v, const CallArgs& a) {
  const Value* a0 = Arg(a, 0, "");
  auto need = [&]() -> const Value& {
    if (a0 == nullptr) throw Error(fmt::format("test '{}' needs an argument", name));
    return *a0;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "false") return v.is_bool() && !v.b();
  if (name == "true") return v.is_bool() && v.b();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") {
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping();
  }
  if (name == "sequence") {
    return v.is_undefined() || v.is_string() || v.is_indexable() || v.is_dict();
  }
  if (name == "callable") return v.is_function();
  if (name == "escaped") return false;
  if (name == "odd" || name == "even") {
    if (!v.is_int() && !v.is_bool()) throw Error(fmt::format("test '{}' needs an integer", name));
    const bool odd = (v.i() % 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "divisibleby") {
    const Value& d = need();
    if (!v.is_number() || !d.is_number()) throw Error("divisibleby needs numbers");
    if (d.AsDouble() == 0) throw Error("integer division or modulo by zero");
    if (v.is_float() || d.is_float()) return std::fmod(v.AsDouble(), d.AsDouble()) == 0;
    return v.i() % d.i() == 0;
  }
  if (name == "sameas") {
    const Value& o = need();
    if (v.type() != o.type()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.is_bool() || v.is_int()) return v.i() == o.i();
    if (v.is_float()) return v.f() == o.f();
    return Equals(v, o) && (v.is_string() ? &v.s() == &o.s() : true);
  }
  if (name == "in") return CompareOp("in", v, need());
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    return StrMethod(in, v.s(), name == "lower" ? "islower" : "isupper", CallArgs()).b();
  }
  static const std::unordered_map<std::string, std::string> kOps = {
      {"eq", "=="}, {"equalto", "=="},    {"==", "=="}, {"ne", "!="}, {"!=", "!="},
      {"lt", "<"},  {"lessthan", "<"},    {"<", "<"},   {"le", "<="}, {"<=", "<="},
      {"gt", ">"},  {"greaterthan", ">"}, {">", ">"},   {"ge", ">="}, {">=", ">="}};
  auto it = kOps.find(name);
  if (it != kOps.end()) return CompareOp(it->second, v, need());
  if (name == "filter") return v.is_string() && IsFilter(v.s());
  if (name == "test") return v.is_string() && IsTest(v.s());
  throw Error(fmt::format("no test named '{}'", name));
}

}  // namespace

bool IsFilter(std::string_view name) {
  const std::string n(name);
  return Filters().count(n) > 0 || FilterAliases().count(n) > 0 ||
         UnsupportedFilters().count(n) > 0;
}

bool IsTest(std::string_view name) {
  static const std::unordered_set<std::string> kTests = {
      "defined", "undefined",   "none",    "boolean",  "false",    "true",     "integer", "float",
      "number",  "string",      "mapping", "iterable", "sequence", "callable", "escaped", "odd",
      "even",    "divisibleby", "sameas",  "in",       "lower",    "upper",    "eq",      "equalto",
      "==",      "ne",          "!=",      "lt",       "lessthan", "<",        "le",      "<=",
      "gt",      "greaterthan", ">",       "ge",       ">=",       "filter",   "test"};
  return kTests.count(std::string(name)) > 0;
}

Value ApplyFilter(Interpreter& in, const std::string& name, const Value& input,
                  const CallArgs& args) {
  in.Step();
  if (input.is_string()) in.Charge(input.s().size() >> 6);
  std::string n = name;
  if (auto a = FilterAliases().find(n); a != FilterAliases().end()) n = a->second;
  auto it = Filters().find(n);
  if (it == Filters().end()) throw Error(fmt::format("filter '{}' is not supported", name));
  Value out = it->second(in, input, args);
  // These filters run str methods on the value, and Markup's return Markup.
  static const std::unordered_set<std::string> kKeepMarkup = {
      "capitalize", "center", "indent", "lower",    "replace", "reverse",
      "string",     "title",  "trim",   "truncate", "upper"};
  if (input.is_markup() && out.is_string() && !out.is_markup() && kKeepMarkup.count(n)) {
    return Value::Markup(out.s());
  }
  return out;
}

bool ApplyTest(Interpreter& in, const std::string& name, const Value& input, const CallArgs& args) {
  in.Step();
  return TestImpl(in, name, input, args);
}

Value GetAttr(const Value& obj, const std::string& name) {
  switch (obj.type()) {
    case Value::Type::kUndefined:
      obj.Defined();
      break;
    case Value::Type::kNamespace:
      if (const Value* v = obj.dict().Find(std::string_view(name))) return *v;
      return Value::Undefined(fmt::format("'Namespace' object has no attribute '{}'", name));
    case Value::Type::kDict:
    case Value::Type::kList:
    case Value::Type::kString:
      if (IsUnsafeMethod(obj, name)) Unsafe(name, obj);
      if (IsMethod(obj, name)) {
        return Value::MakeFunction(name, [obj, name](Interpreter& in, const CallArgs& a) {
          return *CallMethod(in, obj, name, a);
        });
      }
      if (obj.is_dict()) {
        if (const Value* v = obj.dict().Find(std::string_view(name))) return *v;
      }
      break;
    case Value::Type::kNone:
      return Value::Undefined(fmt::format("'None' has no attribute '{}'", name));
    default:
      break;
  }
  return Value::Undefined(fmt::format("'{} object' has no attribute '{}'", obj.TypeName(), name));
}

Value GetItem(const Value& obj, const Value& key) {
  switch (obj.type()) {
    case Value::Type::kUndefined:
      obj.Defined();
      break;
    case Value::Type::kDict:
    case Value::Type::kNamespace:
      if (const Value* v = obj.dict().Find(key)) return *v;
      if (key.is_string() && obj.is_dict()) return GetAttr(obj, key.s());
      break;
    case Value::Type::kList:
    case Value::Type::kString: {
      if (obj.is_list() && !obj.is_indexable()) {
        throw Error(fmt::format("'{}' object is not subscriptable", obj.TypeName()));
      }
      if (key.is_string()) return GetAttr(obj, key.s());
      if (!key.is_int() && !key.is_bool()) break;
      const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list().size())
                                      : static_cast<int64_t>(CharCount(obj.s()));
      int64_t i = key.i();
      if (i < 0) i += n;
      if (i < 0 || i >= n) {
        return Value::Undefined(
            fmt::format("{} object has no element {}", obj.TypeName(), key.i()));
      }
      if (obj.is_list()) return obj.list()[static_cast<size_t>(i)];
      ChargeWork(obj.s().size() >> 6);
      if (obj.s().size() == static_cast<size_t>(n)) return Value(obj.s().substr(i, 1));
      return Value(FromU32(ToU32(obj.s()).substr(static_cast<size_t>(i), 1)));
    }
    default:
      break;
  }
  return Value::Undefined(
      fmt::format("'{} object' has no attribute {}", obj.TypeName(), key.Repr()));
}

Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  obj.Defined();
  auto as_int = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) {
      throw Error(fmt::format("slice {} must be an integer or None", what));
    }
    return v.i();
  };
  const int64_t st = as_int(step, "step").value_or(1);
  ChargeWork(obj.is_string() ? obj.s().size() >> 6 : (obj.is_list() ? obj.list().size() : 0));
  if (st == 0) throw Error("slice step cannot be zero");
  std::u32string u;
  const bool is_str = obj.is_string();
  if (is_str) u = ToU32(obj.s());
  if (!is_str && !obj.is_indexable()) {
    throw Error(fmt::format("'{}' object is not subscriptable", obj.TypeName()));
  }
  const int64_t n =
      is_str ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.list().size());
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  const int64_t b = clamp(as_int(start, "start"), st > 0 ? 0 : n - 1);
  const int64_t e = clamp(as_int(stop, "stop"), st > 0 ? n : -1);
  std::u32string s_out;
  ValueList l_out;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
    if (is_str) {
      s_out.push_back(u[static_cast<size_t>(i)]);
    } else {
      l_out.push_back(obj.list()[static_cast<size_t>(i)]);
    }
  }
  if (is_str) return Value(FromU32(s_out));
  return Value::List(std::move(l_out), obj.is_tuple());
}

std::optional<Value> CallMethod(Interpreter& in, const Value& obj, const std::string& name,
                                const CallArgs& args) {
  in.Step();
  if (IsUnsafeMethod(obj, name)) Unsafe(name, obj);
  if (!IsMethod(obj, name)) return std::nullopt;
  if (obj.is_string()) {
    if (!obj.is_markup()) return StrMethod(in, obj.s(), name, args);
    // Markup's methods escape plain string arguments and return Markup.
    CallArgs escaped = args;
    for (auto& v : escaped.positional) {
      if (v.is_string() && !v.is_markup()) v = Value(HtmlEscape(v.s()));
    }
    Value out = StrMethod(in, obj.s(), name, escaped);
    if (out.is_string()) return Value::Markup(out.s());
    if (out.is_list()) {
      ValueList items = out.list();
      for (auto& v : items) {
        if (v.is_string()) v = Value::Markup(v.s());
      }
      return Value::Sequence(std::move(items), out.seq_kind());
    }
    return out;
  }
  if (obj.is_dict()) {
    if (name == "get") {
      const Value* key = Arg(args, 0, "key");
      if (key == nullptr) throw Error("get expected at least 1 argument, got 0");
      if (const Value* v = obj.dict().Find(*key)) return *v;
      return ArgOr(args, 1, "default", Value::None());
    }
    ValueList out;
    for (const auto& [k, v] : obj.dict().items()) {
      if (name == "items") out.push_back(Value::List({k, v}, true));
      if (name == "keys") out.push_back(k);
      if (name == "values") out.push_back(v);
    }
    if (name == "copy") return MakeDictValue(obj.dict().items());
    return Value::Sequence(std::move(out), name == "items"  ? Value::SeqKind::kDictItems
                                           : name == "keys" ? Value::SeqKind::kDictKeys
                                                            : Value::SeqKind::kDictValues);
  }
  // list / tuple
  if (name == "copy") return Value::List(obj.list(), obj.is_tuple());
  const Value* x = Arg(args, 0, "value");
  if (x == nullptr) throw Error(fmt::format("{}() takes exactly one argument", name));
  int64_t count = 0;
  for (size_t i = 0; i < obj.list().size(); ++i) {
    if (Equals(obj.list()[i], *x)) {
      if (name == "index") return Value(static_cast<int64_t>(i));
      ++count;
    }
  }
  if (name == "index") throw Error(fmt::format("{} is not in list", x->Repr()));
  return Value(count);
}

Value BinaryOp(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  a.Defined();
  b.Defined();
  auto type_error = [&]() -> Error {
    if (op == "+" && a.is_string()) {
      return Error(fmt::format("can only concatenate str (not \"{}\") to str", b.TypeName()));
    }
    if (op == "+" && a.is_list() && !a.is_tuple()) {
      return Error(fmt::format("can only concatenate list (not \"{}\") to list", b.TypeName()));
    }
    return Error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, a.TypeName(),
                             b.TypeName()));
  };
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) {
      int64_t r;
      if (__builtin_add_overflow(a.i(), b.i(), &r)) throw Error("integer overflow");
      return Value(r);
    }
    if (nums) return Value(a.AsDouble() + b.AsDouble());
    if (a.is_string() && b.is_string()) {
      in.Charge((a.s().size() + b.s().size()) >> 6);
      in.CheckSize(a.s().size() + b.s().size());
      if (a.is_markup() || b.is_markup()) {
        auto esc = [](const Value& x) { return x.is_markup() ? x.s() : HtmlEscape(x.s()); };
        return Value::Markup(esc(a) + esc(b));
      }
      return Value(a.s() + b.s());
    }
    if (a.is_indexable() && b.is_indexable() && a.is_tuple() == b.is_tuple()) {
      in.Charge(a.list().size() + b.list().size());
      in.CheckSize((a.list().size() + b.list().size()) * sizeof(Value));
      ValueList out = a.list();
      out.insert(out.end(), b.list().begin(), b.list().end());
      return Value::List(std::move(out), a.is_tuple());
    }
    throw type_error();
  }
  if (op == "-") {
    if (ints) {
      int64_t r;
      if (__builtin_sub_overflow(a.i(), b.i(), &r)) throw Error("integer overflow");
      return Value(r);
    }
    if (nums) return Value(a.AsDouble() - b.AsDouble());
    throw type_error();
  }
  if (op == "*") {
    if (ints) {
      int64_t r;
      if (__builtin_mul_overflow(a.i(), b.i(), &r)) throw Error("integer overflow");
      return Value(r);
    }
    if (nums) return Value(a.AsDouble() * b.AsDouble());
    const Value* seq =
        (a.is_string() || a.is_list()) ? &a : ((b.is_string() || b.is_list()) ? &b : nullptr);
    const Value* times = seq == &a ? &b : &a;
    if (seq != nullptr && (times->is_int() || times->is_bool())) {
      const int64_t n = std::max<int64_t>(0, times->i());
      const size_t unit = seq->is_string() ? seq->s().size() : seq->list().size() * sizeof(Value);
      if (n > 0 && unit > 0 && static_cast<uint64_t>(n) > (uint64_t{1} << 40) / unit) {
        in.CheckSize(SIZE_MAX);
      }
      in.CheckSize(unit * static_cast<size_t>(n));
      in.Charge(unit * static_cast<size_t>(n) >> 6);
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->s();
        return seq->is_markup() ? Value::Markup(std::move(out)) : Value(std::move(out));
      }
      ValueList out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq->list().begin(), seq->list().end());
      return Value::List(std::move(out), seq->is_tuple());
    }
    throw type_error();
  }
  if (!nums) {
    if (op == "%" && a.is_string()) throw Error("string formatting with % is not supported");
    throw type_error();
  }
  if (op == "/") {
    if (b.AsDouble() == 0) throw Error("division by zero");
    return Value(a.AsDouble() / b.AsDouble());
  }
  if (op == "//" || op == "%") {
    if (b.AsDouble() == 0) throw Error("integer division or modulo by zero");
    if (ints) {
      if (a.i() == INT64_MIN && b.i() == -1) throw Error("integer overflow");
      int64_t q = a.i() / b.i(), r = a.i() % b.i();
      if (r != 0 && ((r < 0) != (b.i() < 0))) {
        --q;
        r += b.i();
      }
      return op == "//" ? Value(q) : Value(r);
    }
    const double x = a.AsDouble(), y = b.AsDouble();
    if (op == "//") return Value(std::floor(x / y));
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value(r);
  }
  if (op == "**") {
    if (ints && b.i() >= 0) {
      int64_t r = 1, base = a.i(), e = b.i();
      while (e > 0) {
        if (e & 1) {
          if (__builtin_mul_overflow(r, base, &r)) throw Error("integer overflow");
        }
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) throw Error("integer overflow");
      }
      return Value(r);
    }
    if (a.AsDouble() == 0 && b.AsDouble() < 0) {
      throw Error("0.0 cannot be raised to a negative power");
    }
    return Value(std::pow(a.AsDouble(), b.AsDouble()));
  }
  throw Error(fmt::format("unknown operator '{}'", op));
}

bool CompareOp(const std::string& op, const Value& a, const Value& b) {
  if (b.is_string()) ChargeWork(b.s().size() >> 6);
  if (op == "==") return Equals(a, b);
  if (op == "!=") return !Equals(a, b);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) {
        a.Defined();
        throw Error(
            fmt::format("'in <string>' requires string as left operand, not {}", a.TypeName()));
      }
      found = b.s().find(a.s()) != std::string::npos;
    } else if (b.is_list()) {
      for (const auto& x : b.list()) {
        if (Equals(x, a)) {
          found = true;
          break;
        }
      }
    } else if (b.is_mapping()) {
      found = b.dict().Find(a) != nullptr;
    } else if (!b.is_undefined()) {
      throw Error(fmt::format("argument of type '{}' is not iterable", b.TypeName()));
    }
    return op == "in" ? found : !found;
  }
  const int c = Compare(a, b);
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  if (op == ">=") return c >= 0;
  throw Error(fmt::format("unknown comparison '{}'", op));
}

ValueList Iterate(const Value& v) {
  if (v.is_list()) ChargeWork(v.list().size());
  if (v.is_mapping()) ChargeWork(v.dict().size());
  if (v.is_string()) ChargeWork(v.s().size());
  switch (v.type()) {
    case Value::Type::kUndefined:
      return {};
    case Value::Type::kList:
      return v.list();
    case Value::Type::kDict:
    case Value::Type::kNamespace: {
      ValueList keys;
      for (const auto& [k, val] : v.dict().items()) keys.push_back(k);
      return keys;
    }
    case Value::Type::kString: {
      ValueList chars;
      size_t i = 0;
      while (i < v.s().size()) {
        const int len = DecodeUtf8(v.s(), i).len;
        chars.emplace_back(v.s().substr(i, len));
        i += len;
      }
      return chars;
    }
    default:
      throw Error(fmt::format("'{}' object is not iterable", v.TypeName()));
  }
}

void AddGlobals(Scope& scope) {
  scope.Set("range", Value::MakeFunction("range", [](Interpreter& in, const CallArgs& a) {
              auto num = [&](size_t i) {
                const Value& v = a.positional[i];
                if (!v.is_int() && !v.is_bool()) {
                  throw Error(
                      fmt::format("'{}' object cannot be interpreted as an integer", v.TypeName()));
                }
                return v.i();
              };
              int64_t start = 0, stop = 0, step = 1;
              if (a.positional.size() == 1) {
                stop = num(0);
              } else if (a.positional.size() == 2 || a.positional.size() == 3) {
                start = num(0);
                stop = num(1);
                if (a.positional.size() == 3) step = num(2);
              } else {
                throw Error("range expected 1 to 3 arguments");
              }
              if (step == 0) throw Error("range() arg 3 must not be zero");
              ValueList out;
              for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                in.Step();
                in.CheckSize(out.size() * sizeof(Value));
                out.emplace_back(i);
                if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
              }
              return Value::List(std::move(out));
            }));
  scope.Set("namespace", Value::MakeFunction("namespace", [](Interpreter& in, const CallArgs& a) {
              auto d = std::make_shared<Dict>();
              for (const auto& p : a.positional) {
                if (!p.is_mapping())
                  throw Error("namespace() positional arguments must be mappings");
                for (const auto& [k, v] : p.dict().items()) d->Set(k, v);
              }
              for (const auto& [k, v] : a.keyword) d->Set(Value(k), v);
              return in.NewNamespace(std::move(d));
            }));
  scope.Set("dict", Value::MakeFunction("dict", [](Interpreter&, const CallArgs& a) {
              auto d = std::make_shared<Dict>();
              for (const auto& p : a.positional) {
                if (p.is_mapping()) {
                  for (const auto& [k, v] : p.dict().items()) d->Set(k, v);
                } else {
                  for (const auto& pair : Iterate(p)) {
                    if (!pair.is_list() || pair.list().size() != 2) {
                      throw Error("dict() sequence elements must be pairs");
                    }
                    d->Set(pair.list()[0], pair.list()[1]);
                  }
                }
              }
              for (const auto& [k, v] : a.keyword) d->Set(Value(k), v);
              return Value::MakeDict(std::move(d));
            }));
  scope.Set("raise_exception",
            Value::MakeFunction("raise_exception", [](Interpreter&, const CallArgs& a) -> Value {
              throw Error::Raised(a.positional.empty() ? "" : StrOf(a.positional[0]));
            }));
  scope.Set("strftime_now",
            Value::MakeFunction("strftime_now", [](Interpreter& in, const CallArgs& a) -> Value {
              if (a.positional.empty() || !a.positional[0].is_string()) {
                throw Error("strftime_now needs a format string");
              }
              const std::string& f = a.positional[0].s();
              if (f.size() > 256) throw Error("strftime_now format too long");
              const std::time_t t = std::chrono::system_clock::to_time_t(in.now());
              std::tm tm{};
              localtime_r(&t, &tm);
              char buf[2048];
              const size_t n = f.empty() ? 0 : std::strftime(buf, sizeof(buf), f.c_str(), &tm);
              return Value(std::string(buf, n));
            }));
  scope.Set("joiner", Value::MakeFunction("joiner", [](Interpreter&, const CallArgs& a) {
              const std::string sep = a.positional.empty() ? ", " : StrOf(a.positional[0]);
              auto used = std::make_shared<bool>(false);
              return Value::MakeFunction("joiner", [sep, used](Interpreter&, const CallArgs&) {
                if (!*used) {
                  *used = true;
                  return Value("");
                }
                return Value(sep);
              });
            }));
}

}  // namespace kinfer::tokenizer::jinja
