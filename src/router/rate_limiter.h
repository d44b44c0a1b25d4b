// Per-tenant limits on requests per minute and tokens per minute, as token buckets that refill
// continuously (a full minute's allowance at most, so a quiet tenant can burst one minute's
// worth). A request is admitted when both buckets allow it; its prompt tokens are charged at
// admission and its completion tokens when it ends, so the token bucket may go below zero and
// the tenant then waits until it refills. A refusal says when to come back (Retry-After).
//
//   RateLimiter limits({.requests_per_minute = 60, .tokens_per_minute = 10000});
//   auto d = limits.Admit("key:3fa2…", prompt_tokens, Clock::now());
//   if (!d.allowed) answer 429 with Retry-After d.retry_after_seconds
//   ...
//   limits.Charge("key:3fa2…", completion_tokens, Clock::now());
//
// Thread-safe. Tenants idle long enough to be full again are forgotten, so memory follows the
// active tenants only.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace kinfer::router {

struct RateLimits {
  int64_t requests_per_minute = 0;  // 0: no limit
  int64_t tokens_per_minute = 0;    // 0: no limit
  bool enabled() const { return requests_per_minute > 0 || tokens_per_minute > 0; }
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimits limits) : limits_(limits) {}

  struct Decision {
    bool allowed = true;
    const char* limit = "";           // "requests" or "tokens" when refused
    int64_t retry_after_seconds = 0;  // when refused: whole seconds until it would pass
    // For the x-ratelimit-* headers (OpenAI's names): what is left after this request.
    int64_t remaining_requests = -1, remaining_tokens = -1;  // -1: that limit is off
  };

  Decision Admit(const std::string& tenant, int64_t prompt_tokens, Clock::time_point now);
  // Completion tokens (or a correction) once known. Negative values refund.
  void Charge(const std::string& tenant, int64_t tokens, Clock::time_point now);

  const RateLimits& limits() const { return limits_; }
  size_t tenants() const;

 private:
  struct Buckets {
    double requests = 0, tokens = 0;
    Clock::time_point updated;
  };
  Buckets& Get(const std::string& tenant, Clock::time_point now);
  void Refill(Buckets& b, Clock::time_point now) const;
  void Forget(Clock::time_point now);

  RateLimits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Buckets> tenants_;
  Clock::time_point last_sweep_{};
};

}  // namespace kinfer::router
