// What templates can call: jinja2's filters and tests, the methods of str/dict/list that an
// immutable sandbox allows, attribute and item access, operators, and the globals Hugging Face
// adds (raise_exception, strftime_now) next to jinja2's (range, namespace, dict, joiner).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace kinfer::tokenizer::jinja {

class Interpreter;
class Scope;

// Names jinja2 knows; the parser rejects others as jinja2 does at compile time.
bool IsFilter(std::string_view name);
bool IsTest(std::string_view name);

Value ApplyFilter(Interpreter& in, const std::string& name, const Value& input,
                  const CallArgs& args);
bool ApplyTest(Interpreter& in, const std::string& name, const Value& input, const CallArgs& args);

// obj.name and obj[key], with jinja2's fallbacks (a missing key is undefined, not an error).
Value GetAttr(const Value& obj, const std::string& name);
Value GetItem(const Value& obj, const Value& key);
Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// obj.name(args) for str, dict and list methods; nullopt when there is no such method.
std::optional<Value> CallMethod(Interpreter& in, const Value& obj, const std::string& name,
                                const CallArgs& args);

// + - * / // % ** on Python values.
Value BinaryOp(Interpreter& in, const std::string& op, const Value& a, const Value& b);
// ==, !=, <, <=, >, >=, in, not in.
bool CompareOp(const std::string& op, const Value& a, const Value& b);
// What a for loop iterates: list items, dict keys, string characters; undefined is empty.
ValueList Iterate(const Value& v);

void AddGlobals(Scope& scope);

}  // namespace kinfer::tokenizer::jinja
