// HTTPS to the API server through libcurl: a pool of connections (kept alive between calls),
// TLS from a ClientConfig, bodies buffered or streamed to a callback (watches), and calls that
// a std::stop_token cancels at once (curl_multi_wakeup), not at the next timeout.
// Internal to src/k8s: the Client is what the rest of Kinfer uses.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "k8s/config.h"

namespace kinfer::k8s::internal {

struct HttpCall {
  std::string method = "GET";
  std::string path;  // path and query, appended to the server URL
  std::string body;
  std::string content_type;
  std::string accept = "application/json";
  int timeout_seconds = 30;  // whole call; 0: none
  // When set, the body is passed here as it arrives, with the response's HTTP status, instead
  // of being buffered; returning false ends the call (the result is then kCancelled).
  std::function<bool(long code, std::string_view chunk)> on_body;
};

struct HttpResult {
  long code = 0;
  std::string body;                            // empty when streamed
  std::map<std::string, std::string> headers;  // lower-cased names
  bool streamed_any = false;                   // on_body was called at least once
};

class Transport {
 public:
  explicit Transport(ClientConfig config);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Runs one call. A transport failure (refused, reset, TLS, timeout) is kUnavailable or
  // kDeadlineExceeded; a stop request is kCancelled. Any HTTP status is a result, not an error.
  Result<HttpResult> Perform(const HttpCall& call, std::stop_token stop);

  const ClientConfig& config() const { return config_; }

 private:
  struct Session;
  std::unique_ptr<Session> Checkout();
  void Return(std::unique_ptr<Session> s);

  ClientConfig config_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Session>> idle_;
};

}  // namespace kinfer::k8s::internal
