#include "tokenizer/jinja/value.h"

#include <fmt/format.h>
#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer::jinja {
namespace {

// Values can hold themselves (a namespace set into itself); printing and comparing stop here.
constexpr int kMaxDepth = 200;

void CheckDepth(int depth) {
  if (depth > kMaxDepth) throw Error("value nested too deeply");
}

// Python's str.isprintable() per character: repr() escapes the rest.
bool Printable(char32_t cp) {
  if (cp == ' ') return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

std::string ReprImpl(const Value& v, int depth);

void JsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          out->append(fmt::format("\\u{:04x}", c));
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

std::string JsonKey(const Value& k) {
  switch (k.type()) {
    case Value::Type::kString:
      return k.s();
    case Value::Type::kBool:
      return k.b() ? "true" : "false";
    case Value::Type::kNone:
      return "null";
    case Value::Type::kInt:
    case Value::Type::kFloat:
      return k.Str();
    default:
      throw Error(fmt::format("keys must be str, int, float, bool or None, not {}", k.TypeName()));
  }
}

void ToJsonImpl(const Value& v, int indent, bool sort_keys, int depth, std::string* out) {
  CheckDepth(depth);
  auto newline = [&](int level) {
    if (indent < 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(indent) * level, ' ');
  };
  switch (v.type()) {
    case Value::Type::kNone:
      out->append("null");
      return;
    case Value::Type::kBool:
      out->append(v.b() ? "true" : "false");
      return;
    case Value::Type::kInt:
      out->append(std::to_string(v.i()));
      return;
    case Value::Type::kFloat:
      if (std::isnan(v.f())) {
        out->append("NaN");
      } else if (std::isinf(v.f())) {
        out->append(v.f() > 0 ? "Infinity" : "-Infinity");
      } else {
        out->append(FloatRepr(v.f()));
      }
      return;
    case Value::Type::kString:
      JsonString(v.s(), out);
      return;
    case Value::Type::kList: {
      if (!v.is_indexable()) break;
      if (v.list().empty()) {
        out->append("[]");
        return;
      }
      out->push_back('[');
      bool first = true;
      for (const auto& item : v.list()) {
        if (!first) out->append(indent < 0 ? ", " : ",");
        first = false;
        newline(depth + 1);
        ToJsonImpl(item, indent, sort_keys, depth + 1, out);
      }
      newline(depth);
      out->push_back(']');
      return;
    }
    case Value::Type::kDict:
    case Value::Type::kNamespace: {
      if (v.type() == Value::Type::kNamespace) break;
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, val] : v.dict().items()) items.emplace_back(JsonKey(k), &val);
      if (sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      }
      if (items.empty()) {
        out->append("{}");
        return;
      }
      out->push_back('{');
      bool first = true;
      for (const auto& [k, val] : items) {
        if (!first) out->append(indent < 0 ? ", " : ",");
        first = false;
        newline(depth + 1);
        JsonString(k, out);
        out->append(": ");
        ToJsonImpl(*val, indent, sort_keys, depth + 1, out);
      }
      newline(depth);
      out->push_back('}');
      return;
    }
    default:
      break;
  }
  throw Error(fmt::format("Object of type {} is not JSON serializable",
                          v.is_undefined() ? "Undefined" : v.TypeName()));
}

std::string ReprImpl(const Value& v, int depth) {
  CheckDepth(depth);
  switch (v.type()) {
    case Value::Type::kString:
      return v.is_markup() ? "Markup(" + StringRepr(v.s()) + ")" : StringRepr(v.s());
    case Value::Type::kList: {
      if (v.is_iterator()) return fmt::format("<{} object>", v.TypeName());
      std::string out = v.is_tuple() ? "(" : "[";
      if (!v.is_indexable()) out = v.TypeName() + "([";
      bool first = true;
      for (const auto& item : v.list()) {
        if (!first) out.append(", ");
        first = false;
        out.append(ReprImpl(item, depth + 1));
      }
      if (v.is_tuple() && v.list().size() == 1) out.push_back(',');
      out.append(v.is_tuple() ? ")" : (v.is_indexable() ? "]" : "])"));
      return out;
    }
    case Value::Type::kDict:
    case Value::Type::kNamespace: {
      std::string out = v.is_namespace() ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, val] : v.dict().items()) {
        if (!first) out.append(", ");
        first = false;
        out.append(ReprImpl(k, depth + 1)).append(": ").append(ReprImpl(val, depth + 1));
      }
      out.append(v.is_namespace() ? "}>" : "}");
      return out;
    }
    case Value::Type::kUndefined:
      return "Undefined";
    default:
      return v.Str();
  }
}

bool EqualsImpl(const Value& a, const Value& b, int depth) {
  CheckDepth(depth);
  ChargeWork(1);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.AsDouble() == b.AsDouble();
    return a.i() == b.i();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return true;
    case Value::Type::kString:
      ChargeWork(a.s().size() >> 6);
      return a.s() == b.s();
    case Value::Type::kList: {
      if (a.seq_kind() != b.seq_kind() || a.list().size() != b.list().size()) return false;
      if (a.is_iterator()) return &a.list() == &b.list();
      for (size_t i = 0; i < a.list().size(); ++i) {
        if (!EqualsImpl(a.list()[i], b.list()[i], depth + 1)) return false;
      }
      return true;
    }
    case Value::Type::kDict: {
      if (a.dict().size() != b.dict().size()) return false;
      for (const auto& [k, v] : a.dict().items()) {
        const Value* other = b.dict().Find(k);
        if (other == nullptr || !EqualsImpl(v, *other, depth + 1)) return false;
      }
      return true;
    }
    case Value::Type::kNamespace:
      return &a.dict() == &b.dict();
    case Value::Type::kFunction:
      return &a.function() == &b.function();
    default:
      return false;
  }
}

int CompareImpl(const Value& a, const Value& b, int depth) {
  CheckDepth(depth);
  ChargeWork(1);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      const double x = a.AsDouble(), y = b.AsDouble();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return a.i() < b.i() ? -1 : (a.i() > b.i() ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.s().compare(b.s());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_indexable() && b.is_indexable() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.list();
    const auto& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!EqualsImpl(x[i], y[i], depth + 1)) return CompareImpl(x[i], y[i], depth + 1);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) a.Defined();
  if (b.is_undefined()) b.Defined();
  throw Error(fmt::format("'<' not supported between instances of '{}' and '{}'", a.TypeName(),
                          b.TypeName()));
}

}  // namespace

const Value* CallArgs::Keyword(std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::Undefined(std::string why) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(why));
  return v;
}

Value Value::List(ValueList items, bool tuple) {
  return Sequence(std::move(items), tuple ? SeqKind::kTuple : SeqKind::kList);
}

Value Value::Sequence(ValueList items, SeqKind kind) {
  Value v;
  v.type_ = Type::kList;
  v.seq_ = kind;
  v.list_ = std::make_shared<ValueList>(std::move(items));
  return v;
}

Value Value::MakeDict(std::shared_ptr<Dict> d) {
  Value v;
  v.type_ = Type::kDict;
  v.dict_ = std::move(d);
  return v;
}

Value Value::MakeNamespace(std::shared_ptr<Dict> d) {
  Value v;
  v.type_ = Type::kNamespace;
  v.dict_ = std::move(d);
  return v;
}

Value Value::MakeFunction(std::string name,
                          std::function<Value(Interpreter&, const CallArgs&)> fn) {
  Value v;
  v.type_ = Type::kFunction;
  v.fn_ = std::make_shared<Function>(Function{std::move(name), std::move(fn)});
  return v;
}

const std::string& Value::undefined_why() const {
  static const std::string kDefault = "value is undefined";
  return s_ && type_ == Type::kUndefined ? *s_ : kDefault;
}

const Value& Value::Defined() const {
  if (is_undefined()) throw Error(undefined_why());
  return *this;
}

bool Value::Truthy() const {
  switch (type_) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
    case Type::kInt:
      return i_ != 0;
    case Type::kFloat:
      return f_ != 0;
    case Type::kString:
      return !s_->empty();
    case Type::kList:
      return seq_ == SeqKind::kGenerator || seq_ == SeqKind::kReversed || !list_->empty();
    case Type::kDict:
      return dict_->size() > 0;
    default:
      return true;
  }
}

std::string Value::Str() const {
  switch (type_) {
    case Type::kUndefined:
      return "";
    case Type::kNone:
      return "None";
    case Type::kBool:
      return i_ ? "True" : "False";
    case Type::kInt:
      return std::to_string(i_);
    case Type::kFloat:
      return FloatRepr(f_);
    case Type::kString:
      return *s_;
    case Type::kFunction:
      return fmt::format("<function {}>", fn_->name);
    default:
      return ReprImpl(*this, 0);
  }
}

std::string Value::Repr() const {
  std::string r = ReprImpl(*this, 0);
  ChargeWork(r.size() >> 6);
  return r;
}

std::string Value::TypeName() const {
  switch (type_) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "NoneType";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kFloat:
      return "float";
    case Type::kString:
      return "str";
    case Type::kList:
      switch (seq_) {
        case SeqKind::kList:
          return "list";
        case SeqKind::kTuple:
          return "tuple";
        case SeqKind::kGenerator:
          return "generator";
        case SeqKind::kReversed:
          return "list_reverseiterator";
        case SeqKind::kDictItems:
          return "dict_items";
        case SeqKind::kDictKeys:
          return "dict_keys";
        case SeqKind::kDictValues:
          return "dict_values";
      }
      return "list";
    case Type::kDict:
      return "dict";
    case Type::kFunction:
      return "function";
    case Type::kNamespace:
      return "Namespace";
  }
  return "object";
}

const Value* Dict::Find(std::string_view key) const {
  auto it = string_index_.find(std::string(key));
  return it == string_index_.end() ? nullptr : &items_[it->second].second;
}

const Value* Dict::Find(const Value& key) const {
  if (key.is_string()) return Find(std::string_view(key.s()));
  for (const auto& [k, v] : items_) {
    if (!k.is_string() && Equals(k, key)) return &v;
  }
  return nullptr;
}

void Dict::Set(const Value& key, Value value) {
  if (key.is_string()) {
    auto it = string_index_.find(key.s());
    if (it != string_index_.end()) {
      items_[it->second].second = std::move(value);
      return;
    }
    string_index_.emplace(key.s(), items_.size());
    items_.emplace_back(key, std::move(value));
    return;
  }
  for (auto& [k, v] : items_) {
    if (!k.is_string() && Equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(key, std::move(value));
}

bool Equals(const Value& a, const Value& b) { return EqualsImpl(a, b, 0); }
int Compare(const Value& a, const Value& b) { return CompareImpl(a, b, 0); }

std::string FloatRepr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then laid out as Python's repr does.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(e + 1));
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
    return out;
  }
  if (exp < 0) {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    return out;
  }
  const size_t int_digits = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_digits) {
    out += digits + std::string(int_digits - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
  }
  return out;
}

std::string StringRepr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  size_t i = 0;
  while (i < s.size()) {
    Utf8Char c = DecodeUtf8(s, i);
    const std::string_view raw = s.substr(i, c.len);
    i += c.len;
    if (c.cp == '\\') {
      out.append("\\\\");
    } else if (c.cp == static_cast<char32_t>(quote)) {
      out.push_back('\\');
      out.push_back(quote);
    } else if (c.cp == '\n') {
      out.append("\\n");
    } else if (c.cp == '\r') {
      out.append("\\r");
    } else if (c.cp == '\t') {
      out.append("\\t");
    } else if (!Printable(c.cp)) {
      if (c.cp < 0x100) {
        out.append(fmt::format("\\x{:02x}", static_cast<uint32_t>(c.cp)));
      } else if (c.cp < 0x10000) {
        out.append(fmt::format("\\u{:04x}", static_cast<uint32_t>(c.cp)));
      } else {
        out.append(fmt::format("\\U{:08x}", static_cast<uint32_t>(c.cp)));
      }
    } else {
      out.append(raw);
    }
  }
  out.push_back(quote);
  return out;
}

Value FromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(FromJson(x));
      return Value::List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : j.items()) d->Set(Value(k), FromJson(v));
      return Value::MakeDict(std::move(d));
    }
    default:
      return Value::None();
  }
}

std::string ToJson(const Value& v, int indent, bool sort_keys) {
  std::string out;
  ToJsonImpl(v, indent, sort_keys, 0, &out);
  ChargeWork(out.size() >> 6);
  return out;
}

}  // namespace kinfer::tokenizer::jinja
