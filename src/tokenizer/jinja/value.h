// Values of the Jinja interpreter, with Python's semantics where chat templates can see them:
// str() and repr() text, truthiness, ==, ordering, arithmetic and json.dumps, so a render
// matches Python jinja2's byte for byte.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/jinja/error.h"

namespace kinfer::tokenizer::jinja {

class Value;
class Dict;
class Interpreter;
using ValueList = std::vector<Value>;

// Arguments of a call: positional, then keyword in call order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* Keyword(std::string_view name) const;
};

// A builtin function, bound method or macro. `fn` may throw Error.
struct Function {
  std::string name;
  std::function<Value(Interpreter&, const CallArgs&)> fn;
};

class Value {
 public:
  enum class Type : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,  // also tuples, generators and dict views: see SeqKind
    kDict,
    kFunction,
    kNamespace,  // namespace(): a dict whose attributes templates may set
  };

  // What Python type a kList value is. Generators (what select/map/... return) and dict views
  // iterate like lists but have no len(), no indexing and no JSON form, as in Python.
  enum class SeqKind : uint8_t {
    kList,
    kTuple,
    kGenerator,
    kReversed,  // list_reverseiterator
    kDictItems,
    kDictKeys,
    kDictValues,
  };

  Value() = default;                               // undefined
  Value(bool b) : type_(Type::kBool), i_(b) {}     // NOLINT(google-explicit-constructor)
  Value(int v) : type_(Type::kInt), i_(v) {}       // NOLINT(google-explicit-constructor)
  Value(int64_t v) : type_(Type::kInt), i_(v) {}   // NOLINT(google-explicit-constructor)
  Value(double v) : type_(Type::kFloat), f_(v) {}  // NOLINT(google-explicit-constructor)
  Value(std::string s)                             // NOLINT(google-explicit-constructor)
      : type_(Type::kString), s_(std::make_shared<const std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}  // NOLINT(google-explicit-constructor)

  // markupsafe.Markup: a string marked safe (|safe, |escape). Adding a plain string to it
  // HTML-escapes the plain one, as jinja2 templates observe even without autoescaping.
  static Value Markup(std::string s) {
    Value v(std::move(s));
    v.markup_ = true;
    return v;
  }
  static Value None() {
    Value v;
    v.type_ = Type::kNone;
    return v;
  }
  // An undefined value that remembers why: "'x' is undefined", "'dict object' has no
  // attribute 'a'"; used when something is done with it that needs a value.
  static Value Undefined(std::string why);
  static Value List(ValueList items, bool tuple = false);
  static Value Sequence(ValueList items, SeqKind kind);
  static Value MakeDict(std::shared_ptr<Dict> d);
  static Value MakeNamespace(std::shared_ptr<Dict> d);
  static Value MakeFunction(std::string name,
                            std::function<Value(Interpreter&, const CallArgs&)> fn);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::kUndefined; }
  bool is_none() const { return type_ == Type::kNone; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_int() const { return type_ == Type::kInt; }
  bool is_float() const { return type_ == Type::kFloat; }
  bool is_number() const { return type_ == Type::kInt || type_ == Type::kFloat || is_bool(); }
  bool is_string() const { return type_ == Type::kString; }
  bool is_markup() const { return type_ == Type::kString && markup_; }
  bool is_list() const { return type_ == Type::kList; }
  bool is_tuple() const { return type_ == Type::kList && seq_ == SeqKind::kTuple; }
  // A list or tuple proper: indexable, sized, JSON-serializable.
  bool is_indexable() const {
    return type_ == Type::kList && (seq_ == SeqKind::kList || seq_ == SeqKind::kTuple);
  }
  // A generator or reverse iterator: no len() and always true.
  bool is_iterator() const {
    return type_ == Type::kList && (seq_ == SeqKind::kGenerator || seq_ == SeqKind::kReversed);
  }
  SeqKind seq_kind() const { return seq_; }
  bool is_dict() const { return type_ == Type::kDict; }
  bool is_function() const { return type_ == Type::kFunction; }
  bool is_namespace() const { return type_ == Type::kNamespace; }
  bool is_mapping() const { return is_dict() || is_namespace(); }

  bool b() const { return i_ != 0; }
  int64_t i() const { return i_; }
  double f() const { return f_; }
  // A number as a double (bools and ints convert).
  double AsDouble() const { return type_ == Type::kFloat ? f_ : static_cast<double>(i_); }
  const std::string& s() const { return *s_; }
  const ValueList& list() const { return *list_; }
  const Dict& dict() const { return *dict_; }
  Dict& mutable_dict() const { return *dict_; }
  const Function& function() const { return *fn_; }
  const std::string& undefined_why() const;

  bool Truthy() const;
  // Python str(): what {{ v }} prints.
  std::string Str() const;
  // Python repr(): how v prints inside a list or dict.
  std::string Repr() const;
  // "str", "int", "list", ... as Python names the type, for messages.
  std::string TypeName() const;

  // Throws the undefined value's error if this is undefined.
  const Value& Defined() const;

 private:
  Type type_ = Type::kUndefined;
  SeqKind seq_ = SeqKind::kList;
  bool markup_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;  // string, or why an undefined is undefined
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> fn_;
};

// An insertion-ordered dict (Python 3.7+), keys compared with Python equality.
class Dict {
 public:
  const Value* Find(const Value& key) const;
  const Value* Find(std::string_view key) const;
  void Set(const Value& key, Value value);
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> string_index_;
};

// Python ==, and the ordering of <, sorted() (throws Error for types Python cannot order).
bool Equals(const Value& a, const Value& b);
int Compare(const Value& a, const Value& b);

// Python's repr of a float ("0.1", "1e-05", "100000.0") and of a string ('it''s' quoting).
std::string FloatRepr(double x);
std::string StringRepr(std::string_view s);

// Values from JSON (messages, tools) keep the object key order they were given in.
Value FromJson(const nlohmann::ordered_json& j);
// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys): ", " and ": "
// separators, or "," and newlines when indented (indent < 0: none).
std::string ToJson(const Value& v, int indent, bool sort_keys);

}  // namespace kinfer::tokenizer::jinja
