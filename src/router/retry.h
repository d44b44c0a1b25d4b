// When a failed attempt is tried again on another replica. Only while nothing has reached the
// client (after the first byte a failure becomes an SSE error event), only for failures that
// mean "this replica did not answer" (connection refused, reset before or while answering, 503
// from a draining or loading replica, 429 from a full queue), at most max_retries times, and
// only while the request's deadline leaves time for another try. The router holds a stream's
// response head until its first event, so a replica that dies while a request waits in its
// queue is retried too.
#pragma once

#include <chrono>
#include <string_view>

namespace kinfer::router {

enum class AttemptFailure {
  kNone,
  kConnect,      // connection refused, unreachable, connect timeout
  kReset,        // reset or closed before any response byte
  kUnavailable,  // 503
  kRateLimited,  // 429
  kServerError,  // other 5xx
  kTimeout,      // no response head before the deadline
  kBrokenBody,   // failed while reading the response body (nothing forwarded yet)
};

std::string_view AttemptFailureName(AttemptFailure f);  // metric label: "connect", "reset", ...

struct RetryPolicy {
  int max_retries = 2;
  // A retry needs at least this much of the deadline left.
  std::chrono::milliseconds min_time_left{100};

  bool ShouldRetry(AttemptFailure failure, bool sent_to_client, int retries_done,
                   std::chrono::steady_clock::duration time_left) const;
};

}  // namespace kinfer::router
