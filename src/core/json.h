// JSON parsing that never throws: nlohmann::json underneath, with typed field accessors whose
// errors name the source and the field ("config.json: field 'hidden_size': expected an integer").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace kinfer {

using Json = nlohmann::json;
// Objects keep their key order, as Python dicts do (what chat templates render with tojson).
using OrderedJson = nlohmann::ordered_json;

// Parses `text`; `source` names it in the error. Rejects invalid UTF-8 in strings and nesting
// deeper than `max_depth`.
Result<Json> ParseJson(std::string_view text, std::string_view source, int max_depth = 256);
Result<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view source,
                                     int max_depth = 256);

// Accessors for a field of an object. A missing field or JSON null gives `def` (or nullopt);
// a present field of the wrong type is an error.
Result<std::optional<int64_t>> JsonOptInt(const Json& obj, std::string_view key,
                                          std::string_view source);
Result<std::optional<double>> JsonOptDouble(const Json& obj, std::string_view key,
                                            std::string_view source);
Result<std::optional<bool>> JsonOptBool(const Json& obj, std::string_view key,
                                        std::string_view source);
Result<std::optional<std::string>> JsonOptString(const Json& obj, std::string_view key,
                                                 std::string_view source);

Result<int64_t> JsonInt(const Json& obj, std::string_view key, std::string_view source);
Result<int64_t> JsonInt(const Json& obj, std::string_view key, int64_t def,
                        std::string_view source);
Result<double> JsonDouble(const Json& obj, std::string_view key, double def,
                          std::string_view source);
Result<bool> JsonBool(const Json& obj, std::string_view key, bool def, std::string_view source);
Result<std::string> JsonString(const Json& obj, std::string_view key, std::string_view source);
Result<std::string> JsonString(const Json& obj, std::string_view key, std::string_view def,
                               std::string_view source);

// The JSON type of a value as a user would say it: "integer", "string", "array".
std::string_view JsonTypeName(const Json& v);

}  // namespace kinfer
