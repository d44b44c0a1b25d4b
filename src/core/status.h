// Status and Result<T>: how every Kinfer boundary that reads outside data (files, HTTP, JSON,
// the Kubernetes API) reports failure. No exceptions cross a module or thread boundary.
//
//   Result<Model> m = LoadModel(path);
//   if (!m.ok()) return m.status();
//
//   KINFER_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
//   KINFER_RETURN_IF_ERROR(Validate(*file));
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <tl/expected.hpp>

namespace kinfer {

// Codes follow absl/gRPC meanings so that the HTTP layer can map them to status codes.
enum class StatusCode {
  kOk = 0,
  kCancelled,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,
  kFailedPrecondition,
  kAborted,
  kOutOfRange,
  kUnimplemented,
  kInternal,
  kUnavailable,
  kDataLoss,
  kDeadlineExceeded,
};

std::string_view StatusCodeName(StatusCode code);

// A value type: OK, or a code with a message that names what was wrong and where.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: model.gguf: tensor 'x': ..." for logs and CLI errors.
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>", for adding context on the way up.
  Status WithPrefix(std::string_view prefix) const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status InvalidArgumentError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInvalidArgument, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status NotFoundError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kNotFound, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status DataLossError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kDataLoss, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status UnimplementedError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnimplemented, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status InternalError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status OutOfRangeError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kOutOfRange, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status ResourceExhaustedError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kResourceExhausted, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status FailedPreconditionError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kFailedPrecondition, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status UnavailableError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnavailable, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status PermissionDeniedError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kPermissionDenied, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status UnauthenticatedError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnauthenticated, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status CancelledError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kCancelled, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status AbortedError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kAborted, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status DeadlineExceededError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kDeadlineExceeded, fmt::format(f, std::forward<Args>(args)...));
}

// A T, or the Status that says why there is none. Construct from either; a Result made from an
// OK status is a bug.
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(const T& value) : v_(value) {}        // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Status> &&
           !std::is_same_v<std::decay_t<U>, Result<T>> && !std::is_same_v<std::decay_t<U>, T>)
      // The constraint excludes Result and T themselves, so copies and moves are not hidden.
      // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
      Result(U&& value)
      : v_(T(std::forward<U>(value))) {}
  Result(Status status)  // NOLINT(google-explicit-constructor)
      : v_(tl::unexpect, std::move(status)) {
    assert(!v_.error().ok() && "Result constructed from an OK status");
  }

  bool ok() const { return v_.has_value(); }
  // OK when a value is held.
  Status status() const { return ok() ? Status() : v_.error(); }

  T& value() & {
    assert(ok());
    return *v_;
  }
  const T& value() const& {
    assert(ok());
    return *v_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*v_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  tl::expected<T, Status> v_;
};

namespace internal {
inline const Status& AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace kinfer

#define KINFER_CONCAT_INNER_(a, b) a##b
#define KINFER_CONCAT_(a, b) KINFER_CONCAT_INNER_(a, b)

// Returns the Status of `expr` (a Status or a Result) from the enclosing function if not OK.
#define KINFER_RETURN_IF_ERROR(expr)                                      \
  do {                                                                    \
    ::kinfer::Status kinfer_status_ = ::kinfer::internal::AsStatus(expr); \
    if (!kinfer_status_.ok()) return kinfer_status_;                      \
  } while (0)

// `lhs = value of expr`, or return its error Status.
#define KINFER_ASSIGN_OR_RETURN(lhs, expr) \
  KINFER_ASSIGN_OR_RETURN_IMPL_(KINFER_CONCAT_(kinfer_result_, __LINE__), lhs, expr)
// `lhs` may be a declaration, so it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define KINFER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

// Invariants that only a bug can break: always checked, also in release builds, since a
// silent corruption of the KV cache or a block table is worse than a crash with a message.
#define KINFER_CHECK(cond)                                                   \
  do {                                                                       \
    if (!(cond)) ::kinfer::internal::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

namespace kinfer::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}  // namespace kinfer::internal
