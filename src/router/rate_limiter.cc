#include "router/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace kinfer::router {
namespace {

double PerSecond(int64_t per_minute) { return static_cast<double>(per_minute) / 60.0; }

int64_t CeilSeconds(double s) { return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(s))); }

}  // namespace

void RateLimiter::Refill(Buckets& b, Clock::time_point now) const {
  const double dt = std::chrono::duration<double>(now - b.updated).count();
  if (dt <= 0) return;
  b.requests = std::min(static_cast<double>(limits_.requests_per_minute),
                        b.requests + dt * PerSecond(limits_.requests_per_minute));
  b.tokens = std::min(static_cast<double>(limits_.tokens_per_minute),
                      b.tokens + dt * PerSecond(limits_.tokens_per_minute));
  b.updated = now;
}

RateLimiter::Buckets& RateLimiter::Get(const std::string& tenant, Clock::time_point now) {
  auto [it, inserted] = tenants_.try_emplace(tenant);
  Buckets& b = it->second;
  if (inserted) {
    b.requests = static_cast<double>(limits_.requests_per_minute);
    b.tokens = static_cast<double>(limits_.tokens_per_minute);
    b.updated = now;
  } else {
    Refill(b, now);
  }
  return b;
}

void RateLimiter::Forget(Clock::time_point now) {
  if (now - last_sweep_ < std::chrono::seconds(60)) return;
  last_sweep_ = now;
  for (auto it = tenants_.begin(); it != tenants_.end();) {
    Refill(it->second, now);
    const bool full = it->second.requests >= static_cast<double>(limits_.requests_per_minute) &&
                      it->second.tokens >= static_cast<double>(limits_.tokens_per_minute);
    it = full ? tenants_.erase(it) : std::next(it);
  }
}

RateLimiter::Decision RateLimiter::Admit(const std::string& tenant, int64_t prompt_tokens,
                                         Clock::time_point now) {
  Decision d;
  if (!limits_.enabled()) return d;
  std::lock_guard<std::mutex> lk(mu_);
  Forget(now);
  Buckets& b = Get(tenant, now);
  const bool limit_requests = limits_.requests_per_minute > 0;
  const bool limit_tokens = limits_.tokens_per_minute > 0;
  if (limit_requests && b.requests < 1.0) {
    d.allowed = false;
    d.limit = "requests";
    d.retry_after_seconds =
        CeilSeconds((1.0 - b.requests) / PerSecond(limits_.requests_per_minute));
  }
  // A prompt larger than a whole minute's allowance passes when the bucket is full, or it
  // could never pass at all.
  const double need = std::min(static_cast<double>(std::max<int64_t>(prompt_tokens, 1)),
                               static_cast<double>(limits_.tokens_per_minute));
  if (d.allowed && limit_tokens && b.tokens < need) {
    d.allowed = false;
    d.limit = "tokens";
    d.retry_after_seconds = CeilSeconds((need - b.tokens) / PerSecond(limits_.tokens_per_minute));
  }
  if (d.allowed) {
    if (limit_requests) b.requests -= 1.0;
    if (limit_tokens) b.tokens -= static_cast<double>(std::max<int64_t>(prompt_tokens, 0));
  }
  if (limit_requests) d.remaining_requests = static_cast<int64_t>(std::floor(b.requests));
  if (limit_tokens) d.remaining_tokens = static_cast<int64_t>(std::floor(b.tokens));
  return d;
}

void RateLimiter::Charge(const std::string& tenant, int64_t tokens, Clock::time_point now) {
  if (limits_.tokens_per_minute <= 0 || tokens == 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  Buckets& b = Get(tenant, now);
  b.tokens = std::min(static_cast<double>(limits_.tokens_per_minute),
                      b.tokens - static_cast<double>(tokens));
}

size_t RateLimiter::tenants() const {
  std::lock_guard<std::mutex> lk(mu_);
  return tenants_.size();
}

}  // namespace kinfer::router
