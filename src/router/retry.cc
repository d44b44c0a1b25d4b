#include "router/retry.h"

namespace kinfer::router {

std::string_view AttemptFailureName(AttemptFailure f) {
  switch (f) {
    case AttemptFailure::kNone:
      return "none";
    case AttemptFailure::kConnect:
      return "connect";
    case AttemptFailure::kReset:
      return "reset";
    case AttemptFailure::kUnavailable:
      return "503";
    case AttemptFailure::kRateLimited:
      return "429";
    case AttemptFailure::kServerError:
      return "5xx";
    case AttemptFailure::kTimeout:
      return "timeout";
    case AttemptFailure::kBrokenBody:
      return "broken_body";
  }
  return "none";
}

bool RetryPolicy::ShouldRetry(AttemptFailure failure, bool sent_to_client, int retries_done,
                              std::chrono::steady_clock::duration time_left) const {
  if (sent_to_client || retries_done >= max_retries || time_left < min_time_left) return false;
  switch (failure) {
    case AttemptFailure::kConnect:
    case AttemptFailure::kReset:
    case AttemptFailure::kUnavailable:
    case AttemptFailure::kRateLimited:
    case AttemptFailure::kBrokenBody:  // the replica died mid-answer; none of it was forwarded
      return true;
    case AttemptFailure::kNone:
    case AttemptFailure::kServerError:  // the replica took it and failed: likely to fail again
    case AttemptFailure::kTimeout:      // it may still be working on it: do not double the load
      return false;
  }
  return false;
}

}  // namespace kinfer::router
