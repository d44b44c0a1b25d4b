// What a front door answers when a request is wrong: an HTTP status with an error the API's
// clients understand (OpenAI's shape by default: {"error": {"message", "type", "param",
// "code"}}), and ApiResult<T> for parsers that produce either a value or such an error.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace kinfer::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};

// A 400 invalid_request_error naming the offending field (`param`) when there is one.
ApiError BadRequest(std::string message, std::string param = "", std::string code = "");

template <typename T>
class ApiResult {
 public:
  ApiResult(T v) : value_(std::move(v)) {}         // NOLINT
  ApiResult(ApiError e) : error_(std::move(e)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }
  const ApiError& error() const { return error_; }

 private:
  std::optional<T> value_;
  ApiError error_;
};

// What a part parser returns: nothing, or the request's first problem.
using ParseError = std::optional<ApiError>;

}  // namespace kinfer::server
