// HTTP/1.1 from the router to the replicas: a keep-alive connection pool per replica, and calls
// that hand the response back as it arrives (head, then body bytes as they come off the
// socket), so a stream is never buffered. All of Beast stays in upstream.cc.
//
//   UpstreamClient client(server.io_context(), {});
//   auto call = client.Start(endpoint, request, {
//       .on_head = [](ResponseHead h) {...},
//       .on_body = [](std::string_view bytes) {...},
//       .on_done = [](const CallResult& r) {...}}, deadline);
//   call->Cancel();  // from any thread: closes the connection, so the replica aborts the request
//
// Every handler of one call runs on one strand, one at a time, and on_done exactly once.
// A connection taken from the pool that turns out to have been closed by the replica (no
// response byte at all) is replaced by a fresh one transparently, once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace kinfer::router {

// Where a replica listens. Plain HTTP: replicas sit behind a NetworkPolicy that lets only the
// router in.
struct Endpoint {
  std::string host;
  int port = 80;
  std::string ToString() const;  // "host:port" ([v6]:port)
  bool operator==(const Endpoint&) const = default;
};

// "http://host:port", "host:port" or "host" (port 80). A path other than "/" or https:// is an
// error that names the URL.
Result<Endpoint> ParseEndpoint(std::string_view url);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct OutgoingRequest {
  std::string method = "GET";
  std::string target = "/";
  HeaderList headers;  // end-to-end headers; Host, Content-Length and Connection are added
  std::shared_ptr<const std::string> body;  // may be null
};

struct ResponseHead {
  int status = 0;
  HeaderList headers;  // end-to-end headers (no hop-by-hop ones, no Content-Length)
  std::string content_type;
  bool streamed = false;  // chunked or read to the end: a stream, not a sized body
};

enum class CallError {
  kNone,
  kConnect,    // resolve or connect failed or timed out
  kReset,      // the connection closed or reset before the response was complete
  kTimeout,    // the deadline (head) or the read timeout (body) passed
  kCancelled,  // Cancel()
  kProtocol,   // the response was not valid HTTP/1.1
};

struct CallResult {
  CallError error = CallError::kNone;
  std::string message;         // what went wrong, for logs
  bool head_received = false;  // the failure came after the response head
  uint64_t body_bytes = 0;
};

struct CallHandlers {
  std::function<void(ResponseHead)> on_head;
  std::function<void(std::string_view)> on_body;
  std::function<void(const CallResult&)> on_done;
};

class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  // Stops the call and closes its connection; on_done follows with kCancelled unless the call
  // had already ended. Safe from any thread, and more than once.
  virtual void Cancel() = 0;
};

struct UpstreamOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{300000};  // between body reads
  std::chrono::seconds idle_timeout{30};  // an idle pooled connection older than this is closed
  int max_idle_per_endpoint = 128;
};

class UpstreamClient {
 public:
  using Clock = std::chrono::steady_clock;
  UpstreamClient(boost::asio::io_context& ioc, UpstreamOptions options);
  ~UpstreamClient();

  // Sends `request` to `endpoint`. The head must arrive before `deadline`.
  std::shared_ptr<UpstreamCall> Start(const Endpoint& endpoint,
                                      std::shared_ptr<const OutgoingRequest> request,
                                      CallHandlers handlers, Clock::time_point deadline);

  // A small GET whose whole body comes back (probes, /metrics scrapes), at most max_body bytes.
  // Errors: kUnavailable when no connection could be made, kDeadlineExceeded on timeout,
  // kResourceExhausted for a body over max_body, kAborted otherwise.
  struct SimpleResponse {
    int status = 0;
    std::string body;
  };
  void Get(const Endpoint& endpoint, const std::string& target, const HeaderList& headers,
           Clock::duration timeout, size_t max_body,
           std::function<void(Result<SimpleResponse>)> done);

  // Closes the idle connections to a replica that left the pool.
  void Forget(const Endpoint& endpoint);
  // Closes every idle connection; later calls still work.
  void CloseIdle();
  size_t idle_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kinfer::router
