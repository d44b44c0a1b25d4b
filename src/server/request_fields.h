// Typed reads of a request body's fields for the API front doors (OpenAI completions and chat,
// and the parsers that share their parts): the first problem becomes a 400 that names the field.
//
//   Fields f(body);
//   f.Float("temperature", &p.temperature, 0, 100);
//   f.Int("n", &p.n, 1, 128);
//   if (!f.ok()) return *f.error();  // "'n' must be between 1 and 128, got 500", param "n"
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/json.h"
#include "server/api_error.h"

namespace kinfer::server {

class Fields {
 public:
  explicit Fields(const Json& j) : j_(j) {}

  const Json& json() const { return j_; }
  std::optional<ApiError>& error() { return error_; }
  bool ok() const { return !error_; }

  // The field, or nullptr when it is absent or JSON null.
  const Json* Get(const char* name) const;

  // Records a 400 naming `name`, unless an earlier problem was recorded.
  void Fail(const char* name, std::string message);

  // Each reads a present field into *out and returns true; an absent or null field leaves *out
  // as it is and returns false; a wrong type or a value out of range records the problem and
  // returns false. After a problem every read returns false.
  template <typename T>
  bool Int(const char* name, T* out, int64_t lo, int64_t hi) {
    int64_t x = 0;
    if (!ReadInt(name, &x, lo, hi)) return false;
    *out = static_cast<T>(x);
    return true;
  }
  bool Float(const char* name, float* out, double lo, double hi);
  bool Bool(const char* name, bool* out);
  bool String(const char* name, std::string* out, size_t max_len = 1 << 16);

 private:
  bool ReadInt(const char* name, int64_t* out, int64_t lo, int64_t hi);

  const Json& j_;
  std::optional<ApiError> error_;
};

}  // namespace kinfer::server
