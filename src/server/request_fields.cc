#include "server/request_fields.h"

#include <cmath>

#include <fmt/format.h>

namespace kinfer::server {

const Json* Fields::Get(const char* name) const {
  auto it = j_.find(name);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

void Fields::Fail(const char* name, std::string message) {
  if (!error_) error_ = BadRequest(std::move(message), name);
}

bool Fields::ReadInt(const char* name, int64_t* out, int64_t lo, int64_t hi) {
  const Json* v = Get(name);
  if (!v || error_) return false;
  int64_t x;
  if (v->is_number_integer() || v->is_number_unsigned()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
      Fail(name, fmt::format("'{}' must be at most {}", name, hi));
      return false;
    }
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) &&
             v->get<double>() == std::floor(v->get<double>()) &&
             std::fabs(v->get<double>()) < 9e15) {
    x = static_cast<int64_t>(v->get<double>());
  } else {
    Fail(name, fmt::format("'{}' must be an integer, got {}", name, JsonTypeName(*v)));
    return false;
  }
  if (x < lo || x > hi) {
    Fail(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x));
    return false;
  }
  *out = x;
  return true;
}

bool Fields::Float(const char* name, float* out, double lo, double hi) {
  const Json* v = Get(name);
  if (!v || error_) return false;
  if (!v->is_number()) {
    Fail(name, fmt::format("'{}' must be a number, got {}", name, JsonTypeName(*v)));
    return false;
  }
  double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    Fail(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v->dump()));
    return false;
  }
  *out = static_cast<float>(x);
  return true;
}

bool Fields::Bool(const char* name, bool* out) {
  const Json* v = Get(name);
  if (!v || error_) return false;
  if (!v->is_boolean()) {
    Fail(name, fmt::format("'{}' must be a boolean, got {}", name, JsonTypeName(*v)));
    return false;
  }
  *out = v->get<bool>();
  return true;
}

bool Fields::String(const char* name, std::string* out, size_t max_len) {
  const Json* v = Get(name);
  if (!v || error_) return false;
  if (!v->is_string()) {
    Fail(name, fmt::format("'{}' must be a string, got {}", name, JsonTypeName(*v)));
    return false;
  }
  if (v->get_ref<const std::string&>().size() > max_len) {
    Fail(name, fmt::format("'{}' is longer than {} bytes", name, max_len));
    return false;
  }
  *out = v->get<std::string>();
  return true;
}

}  // namespace kinfer::server
