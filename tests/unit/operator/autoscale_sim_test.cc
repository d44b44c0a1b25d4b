// The simulation proof (operator/autoscale_sim.h): under step, burst, sawtooth and
// diurnal load with a fast-forwarded clock, the real autoscaler loses no request, does not flap,
// scales up within a bound after a step and reaches zero when idle. The no-drain baseline (a
// ReplicaSet removing pods as they serve, with a short shutdown) cuts requests in the same
// simulation, so the zero-cut check is one that can fail.
#include "operator/autoscale_sim.h"

#include <gtest/gtest.h>

namespace kinfer::op {
namespace {

class AutoscaleSim : public testing::TestWithParam<int> {};

TEST_P(AutoscaleSim, NoRequestLostNoFlappingWithinBounds) {
  const SimLoad load = AllLoads()[static_cast<size_t>(GetParam())];
  for (uint64_t seed : {1, 2, 3}) {
    SimOptions o;
    o.seed = seed;
    o.shutdown_timeout_s = 2;  // even a short SIGTERM drain cuts nothing: the drain came first
    SimResult r = RunSimulation(o, load);
    SCOPED_TRACE(load.name + " seed " + std::to_string(seed));
    EXPECT_GT(r.arrived, 1000);
    EXPECT_EQ(r.dropped_hold_timeout, 0);
    EXPECT_EQ(r.dropped_queue_full, 0);
    EXPECT_EQ(r.cut, 0);
    EXPECT_EQ(r.flaps(60), 0);
    EXPECT_LE(r.max_spec, o.autoscaler.max_replicas);
    for (const SimPoint& p : r.series) {
      ASSERT_GE(p.spec, 0);
      ASSERT_LE(p.spec, o.autoscaler.max_replicas);
    }
    // Every profile ends (or, for diurnal, starts) with more than scaleToZeroAfter of nothing.
    bool zero = false;
    for (const SimPoint& p : r.series) zero = zero || p.spec == 0;
    EXPECT_TRUE(zero);
  }
}

INSTANTIATE_TEST_SUITE_P(Loads, AutoscaleSim, testing::Range(0, 4), [](const auto& info) {
  return AllLoads()[static_cast<size_t>(info.param)].name;
});

TEST(AutoscaleSimStep, ScalesUpWithinBoundsAndBackToZero) {
  SimOptions o;
  SimResult r = RunSimulation(o, StepLoad());
  // At 300 s the rate goes 0.5 -> 8 requests/s: 32 in flight, 6 replicas at 6 per replica.
  // The panic window sees it within a few scrapes; 2x steps from 1 reach 6+ in three.
  double spec6 = -1;
  for (const SimPoint& p : r.series) {
    if (p.t >= 300 && p.spec >= 6) {
      spec6 = p.t - 300;
      break;
    }
  }
  EXPECT_GE(spec6, 0);
  EXPECT_LE(spec6, 12);
  // Ready once the pods' cold start (20 s) is over, plus a scrape or two.
  const double ready6 = r.time_to_ready(300, 6);
  EXPECT_GE(ready6, o.cold_start_s);
  EXPECT_LE(ready6, o.cold_start_s + 12);
  // After 1500 s nothing arrives until 2100: zero about scaleToZeroAfter (300 s) after the last
  // request ends, and back from zero when load returns, with nothing dropped (checked above).
  double zero_at = -1;
  for (const SimPoint& p : r.series) {
    if (p.t > 1500 && p.spec == 0) {
      zero_at = p.t;
      break;
    }
  }
  EXPECT_GE(zero_at, 1800);
  EXPECT_LE(zero_at, 1800 + 60);
  bool activated = false;
  for (const SimScaleEvent& e : r.scale_events) {
    activated = activated || (e.t >= 2100 && e.from == 0 && e.to == 1);
  }
  EXPECT_TRUE(activated);
  int32_t end_spec = r.series.back().spec;
  EXPECT_EQ(end_spec, 1);  // 1 request/s needs one replica
}

TEST(AutoscaleSimStep, WithoutTheDrainScaleDownCutsRequests) {
  SimOptions o;
  o.drain = false;
  o.shutdown_timeout_s = 2;
  int64_t cut = 0;
  for (const SimLoad& load : AllLoads()) cut += RunSimulation(o, load).cut;
  EXPECT_GT(cut, 0);
}

TEST(AutoscaleSimStep, IsDeterministic) {
  SimResult a = RunSimulation(SimOptions{}, BurstLoad());
  SimResult b = RunSimulation(SimOptions{}, BurstLoad());
  ASSERT_EQ(a.series.size(), b.series.size());
  for (size_t i = 0; i < a.series.size(); ++i) {
    ASSERT_EQ(a.series[i].spec, b.series[i].spec) << i;
    ASSERT_EQ(a.series[i].in_flight, b.series[i].in_flight) << i;
  }
  EXPECT_EQ(a.waits_s, b.waits_s);
}

}  // namespace
}  // namespace kinfer::op
