// Token buckets on a fake clock: a minute's allowance, continuous refill, token charges that
// may go below zero, Retry-After that says when the next request would pass.
#include "router/rate_limiter.h"

#include <gtest/gtest.h>

namespace kinfer::router {
namespace {

RateLimits Limits(int64_t rpm, int64_t tpm) {
  RateLimits l;
  l.requests_per_minute = rpm;
  l.tokens_per_minute = tpm;
  return l;
}

using std::chrono::seconds;
using Clock = RateLimiter::Clock;

TEST(RateLimiter, RequestsPerMinute) {
  RateLimiter rl(Limits(3, 0));
  Clock::time_point t{};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Admit("a", 10, t).allowed);
  auto d = rl.Admit("a", 10, t);
  EXPECT_FALSE(d.allowed);
  EXPECT_STREQ(d.limit, "requests");
  EXPECT_EQ(d.retry_after_seconds, 20);       // one request refills in 60 / 3 s
  EXPECT_TRUE(rl.Admit("b", 10, t).allowed);  // per tenant
  EXPECT_FALSE(rl.Admit("a", 10, t + seconds(19)).allowed);
  EXPECT_TRUE(rl.Admit("a", 10, t + seconds(20)).allowed);
}

TEST(RateLimiter, TokensPerMinuteChargedAfterTheFact) {
  RateLimiter rl(Limits(0, 600));  // 10 a second
  Clock::time_point t{};
  auto d = rl.Admit("a", 100, t);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining_tokens, 500);
  EXPECT_EQ(d.remaining_requests, -1);
  rl.Charge("a", 700, t);  // the completion was long: the bucket goes to -200
  d = rl.Admit("a", 100, t);
  EXPECT_FALSE(d.allowed);
  EXPECT_STREQ(d.limit, "tokens");
  EXPECT_EQ(d.retry_after_seconds, 30);  // from -200 to 100 at 10 a second
  EXPECT_TRUE(rl.Admit("a", 100, t + seconds(30)).allowed);
  // A prompt bigger than the whole allowance passes when the bucket is full.
  EXPECT_TRUE(rl.Admit("c", 5000, t).allowed);
  EXPECT_FALSE(rl.Admit("c", 1, t).allowed);
  rl.Charge("c", -10000, t);  // refunds cap at a full bucket
  EXPECT_EQ(rl.Admit("c", 0, t).remaining_tokens, 600);
}

TEST(RateLimiter, ForgetsTenantsThatRefilled) {
  RateLimiter rl(Limits(60, 0));
  Clock::time_point t = Clock::time_point() + seconds(100);
  for (int i = 0; i < 100; ++i) rl.Admit("t" + std::to_string(i), 0, t);
  EXPECT_EQ(rl.tenants(), 100u);
  rl.Admit("x", 0, t + seconds(120));
  EXPECT_EQ(rl.tenants(), 1u);
}

TEST(RateLimiter, OffAdmitsEverything) {
  RateLimiter rl({});
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(rl.Admit("a", 1 << 20, Clock::time_point{}).allowed);
}

}  // namespace
}  // namespace kinfer::router
