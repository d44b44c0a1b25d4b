// Passive ejection and its backoff, on a fake clock: the rules health.h states (connect errors
// eject at once, 5xx after three in a row, doubling up to the cap, never more than half the
// pool, back only after a probe passes once the ejection ran out).
#include "router/health.h"

#include <gtest/gtest.h>

namespace kinfer::router {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct HealthTest : ::testing::Test {
  Clock::time_point t = Clock::time_point() + seconds(1000);
  ReplicaHealth h;
  void SetUp() override { h.OnProbe(true, t); }
};

TEST_F(HealthTest, ConnectErrorEjectsAtOnceForTheBaseTime) {
  EXPECT_TRUE(h.Routable(t));
  EXPECT_TRUE(h.OnOutcome(Outcome::kConnectError, t, 0, 4));
  EXPECT_FALSE(h.Routable(t));
  EXPECT_TRUE(h.Ejected(t + milliseconds(999)));
  // Time alone is not enough: a probe must pass after the ejection ran out.
  EXPECT_TRUE(h.Ejected(t + seconds(5)));
  h.OnProbe(true, t + seconds(5));
  EXPECT_FALSE(h.Ejected(t + seconds(5)));
  EXPECT_TRUE(h.Routable(t + seconds(5)));
}

TEST_F(HealthTest, ServerErrorsEjectAfterThreeInARow) {
  EXPECT_FALSE(h.OnOutcome(Outcome::kServerError, t, 0, 4));
  EXPECT_FALSE(h.OnOutcome(Outcome::kServerError, t, 0, 4));
  EXPECT_FALSE(h.OnOutcome(Outcome::kSuccess, t, 0, 4));  // resets the count
  EXPECT_FALSE(h.OnOutcome(Outcome::kServerError, t, 0, 4));
  EXPECT_FALSE(h.OnOutcome(Outcome::kServerError, t, 0, 4));
  EXPECT_TRUE(h.OnOutcome(Outcome::kServerError, t, 0, 4));
}

TEST_F(HealthTest, BackoffDoublesUpToTheCapAndResetsAfterSuccess) {
  Clock::time_point now = t;
  seconds expect[] = {seconds(1),  seconds(2),  seconds(4), seconds(8),
                      seconds(16), seconds(30), seconds(30)};
  for (seconds d : expect) {
    ASSERT_TRUE(h.OnOutcome(Outcome::kReset, now, 0, 4));
    EXPECT_EQ(h.ejected_until() - now, d);
    now = h.ejected_until();
    h.OnProbe(true, now);
    ASSERT_TRUE(h.Routable(now));
  }
  EXPECT_FALSE(h.OnOutcome(Outcome::kSuccess, now, 0, 4));
  ASSERT_TRUE(h.OnOutcome(Outcome::kReset, now, 0, 4));
  EXPECT_EQ(h.ejected_until() - now, seconds(1));
}

TEST_F(HealthTest, NeverEjectsMoreThanHalfThePool) {
  EXPECT_FALSE(h.OnOutcome(Outcome::kConnectError, t, 1, 2));  // the other one is out already
  EXPECT_TRUE(h.Routable(t));
  EXPECT_FALSE(h.OnOutcome(Outcome::kConnectError, t, 0, 1));  // a pool of one
  EXPECT_TRUE(h.OnOutcome(Outcome::kConnectError, t, 1, 4));
}

TEST_F(HealthTest, LateFailuresDoNotExtendAnEjection) {
  ASSERT_TRUE(h.OnOutcome(Outcome::kConnectError, t, 0, 4));
  const Clock::time_point until = h.ejected_until();
  EXPECT_FALSE(h.OnOutcome(Outcome::kReset, t + milliseconds(500), 0, 4));
  EXPECT_EQ(h.ejected_until(), until);
}

TEST_F(HealthTest, ProbesAndDiscoveryGateRouting) {
  h.OnProbe(false, t);
  EXPECT_FALSE(h.Routable(t));
  h.OnProbe(true, t);
  h.SetDiscovered(true, /*terminating=*/true);
  EXPECT_FALSE(h.Routable(t));
  h.SetDiscovered(false, false);
  EXPECT_FALSE(h.Routable(t));
  h.SetDiscovered(true, false);
  EXPECT_TRUE(h.Routable(t));
  ReplicaHealth fresh;
  EXPECT_FALSE(fresh.Routable(t));  // never probed
}

}  // namespace
}  // namespace kinfer::router
