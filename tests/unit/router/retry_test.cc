// The retry rule, case by case, as retry.h and the issue state it.
#include "router/retry.h"

#include <gtest/gtest.h>

namespace kinfer::router {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Retry, RetriesOnlyWhatTheReplicaDidNotAnswer) {
  RetryPolicy p;
  for (AttemptFailure f :
       {AttemptFailure::kConnect, AttemptFailure::kReset, AttemptFailure::kUnavailable,
        AttemptFailure::kRateLimited, AttemptFailure::kBrokenBody}) {
    EXPECT_TRUE(p.ShouldRetry(f, false, 0, seconds(10))) << AttemptFailureName(f);
  }
  for (AttemptFailure f :
       {AttemptFailure::kNone, AttemptFailure::kServerError, AttemptFailure::kTimeout}) {
    EXPECT_FALSE(p.ShouldRetry(f, false, 0, seconds(10))) << AttemptFailureName(f);
  }
}

TEST(Retry, NeverAfterTheFirstByteAtMostTwiceAndWithinTheDeadline) {
  RetryPolicy p;
  EXPECT_FALSE(p.ShouldRetry(AttemptFailure::kReset, /*sent_to_client=*/true, 0, seconds(10)));
  EXPECT_TRUE(p.ShouldRetry(AttemptFailure::kReset, false, 1, seconds(10)));
  EXPECT_FALSE(p.ShouldRetry(AttemptFailure::kReset, false, 2, seconds(10)));
  EXPECT_FALSE(p.ShouldRetry(AttemptFailure::kReset, false, 0, milliseconds(50)));
  p.max_retries = 0;
  EXPECT_FALSE(p.ShouldRetry(AttemptFailure::kConnect, false, 0, seconds(10)));
}

}  // namespace
}  // namespace kinfer::router
