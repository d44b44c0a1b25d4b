#include "core/json.h"

#include <cmath>
#include <limits>

namespace kinfer {
namespace {

// Bounds nesting before nlohmann recurses, so hostile input cannot overflow the stack.
bool NestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace

std::string_view JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::binary:
      return "binary";
    case Json::value_t::discarded:
      return "invalid";
  }
  return "unknown";
}

namespace {
template <typename J>
Result<J> Parse(std::string_view text, std::string_view source, int max_depth) {
  if (!NestingWithin(text, max_depth)) {
    return InvalidArgumentError("{}: JSON nested deeper than {} levels", source, max_depth);
  }
  try {
    return J::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    std::string what = e.what();
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    return InvalidArgumentError("{}: invalid JSON: {}", source, what);
  } catch (const std::exception& e) {
    return InvalidArgumentError("{}: invalid JSON: {}", source, e.what());
  }
}
}  // namespace

Result<Json> ParseJson(std::string_view text, std::string_view source, int max_depth) {
  return Parse<Json>(text, source, max_depth);
}

Result<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view source,
                                     int max_depth) {
  return Parse<OrderedJson>(text, source, max_depth);
}

static const Json* FindField(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<int64_t>> JsonOptInt(const Json& obj, std::string_view key,
                                          std::string_view source) {
  const Json* v = FindField(obj, key);
  if (!v) return std::optional<int64_t>();
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgumentError("{}: field '{}': integer {} is too large", source, key, u);
    }
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  if (v->is_number_integer()) return std::optional<int64_t>(v->get<int64_t>());
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.007199254740992e15) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return InvalidArgumentError("{}: field '{}': expected an integer, got {}", source, key,
                              JsonTypeName(*v));
}

Result<std::optional<double>> JsonOptDouble(const Json& obj, std::string_view key,
                                            std::string_view source) {
  const Json* v = FindField(obj, key);
  if (!v) return std::optional<double>();
  if (!v->is_number()) {
    return InvalidArgumentError("{}: field '{}': expected a number, got {}", source, key,
                                JsonTypeName(*v));
  }
  return std::optional<double>(v->get<double>());
}

Result<std::optional<bool>> JsonOptBool(const Json& obj, std::string_view key,
                                        std::string_view source) {
  const Json* v = FindField(obj, key);
  if (!v) return std::optional<bool>();
  if (!v->is_boolean()) {
    return InvalidArgumentError("{}: field '{}': expected true or false, got {}", source, key,
                                JsonTypeName(*v));
  }
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<std::string>> JsonOptString(const Json& obj, std::string_view key,
                                                 std::string_view source) {
  const Json* v = FindField(obj, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) {
    return InvalidArgumentError("{}: field '{}': expected a string, got {}", source, key,
                                JsonTypeName(*v));
  }
  return std::optional<std::string>(v->get<std::string>());
}

Result<int64_t> JsonInt(const Json& obj, std::string_view key, std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(auto v, JsonOptInt(obj, key, source));
  if (!v) return InvalidArgumentError("{}: missing field '{}'", source, key);
  return *v;
}

Result<int64_t> JsonInt(const Json& obj, std::string_view key, int64_t def,
                        std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(auto v, JsonOptInt(obj, key, source));
  return v.value_or(def);
}

Result<double> JsonDouble(const Json& obj, std::string_view key, double def,
                          std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(auto v, JsonOptDouble(obj, key, source));
  return v.value_or(def);
}

Result<bool> JsonBool(const Json& obj, std::string_view key, bool def, std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(auto v, JsonOptBool(obj, key, source));
  return v.value_or(def);
}

Result<std::string> JsonString(const Json& obj, std::string_view key, std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(auto v, JsonOptString(obj, key, source));
  if (!v) return InvalidArgumentError("{}: missing field '{}'", source, key);
  return *v;
}

Result<std::string> JsonString(const Json& obj, std::string_view key, std::string_view def,
                               std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(auto v, JsonOptString(obj, key, source));
  return v ? *v : std::string(def);
}

}  // namespace kinfer
