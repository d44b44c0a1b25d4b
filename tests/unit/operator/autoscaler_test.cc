// The autoscaler's rules (operator/autoscaler.h), each against the count worked out by hand from
// Knative KPA's definitions (stable/panic windows, panic at 2x, no scale-down while panicking)
// and the issue's additions (bounded steps, one drained replica at a time, idle to zero, frozen
// on missing metrics, one writer with an HPA, state that survives a leader change).
#include "operator/autoscaler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kinfer::op {
namespace {

using namespace std::chrono_literals;
using Phase = EngineObservation::Phase;

const AutoscalerTime kT0 = AutoscalerTime(std::chrono::seconds(1'800'000'000));

// Concurrency only, so each expectation is in_flight / 8 rounded up.
AutoscalerConfig ConcurrencyOnly() {
  AutoscalerConfig c;
  c.min_replicas = 1;
  c.max_replicas = 20;
  c.target_concurrency = 8;
  c.target_waiting = 0;
  c.target_kv_usage = 0;
  return c;
}

EngineObservation Engine(std::string pod, double running = 0, Phase phase = Phase::kReady) {
  EngineObservation e;
  e.pod = std::move(pod);
  e.phase = phase;
  e.metrics_ok = phase == Phase::kReady;
  e.running = running;
  e.in_flight = static_cast<int64_t>(running);
  return e;
}

// `replicas` ready engines sharing `in_flight` evenly, one router reporting it.
AutoscalerObservation Obs(int32_t replicas, double in_flight, double held = 0) {
  AutoscalerObservation o;
  o.replicas = replicas;
  o.routers.push_back({"router-a", true, in_flight, held});
  for (int32_t i = 0; i < replicas; ++i) {
    o.engines.push_back(Engine("engine-" + std::to_string(i), (in_flight - held) / replicas));
  }
  return o;
}

// Steps every 2 s from `from` for `seconds`, feeding the same observation; returns the last
// decision and keeps `o.replicas` following the decisions (as the cluster would).
AutoscalerDecision RunFor(Autoscaler& a, AutoscalerObservation& o, AutoscalerTime& t,
                          std::chrono::seconds seconds) {
  AutoscalerDecision d;
  const AutoscalerTime end = t + seconds;
  for (; t < end; t += 2s) {
    d = a.Step(o, t);
    o.replicas = d.replicas;
  }
  return d;
}

TEST(AutoscalerConfig, ValidateNamesTheField) {
  AutoscalerConfig c = ConcurrencyOnly();
  EXPECT_TRUE(c.Validate().ok());
  c.min_replicas = 5;
  c.max_replicas = 2;
  EXPECT_NE(c.Validate().message().find("minReplicas (5) exceeds maxReplicas (2)"),
            std::string::npos);
  c = ConcurrencyOnly();
  c.min_replicas = 0;
  EXPECT_NE(c.Validate().message().find("scaleToZeroAfter"), std::string::npos);
  c.scale_to_zero_after = 300s;
  EXPECT_TRUE(c.Validate().ok());
  c.panic_window = 120s;
  EXPECT_NE(c.Validate().message().find("autoscaling.panicWindow"), std::string::npos);
  c = ConcurrencyOnly();
  c.target_concurrency = 0;
  EXPECT_NE(c.Validate().message().find("every target is 0"), std::string::npos);
  c = ConcurrencyOnly();
  c.target_kv_usage = 1.5;
  EXPECT_NE(c.Validate().message().find("targetKVCacheUsage"), std::string::npos);
  c = ConcurrencyOnly();
  c.panic_threshold = 1;
  EXPECT_NE(c.Validate().message().find("panicThreshold"), std::string::npos);
}

TEST(Autoscaler, ScalesUpToTheStableWindowsCount) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  // 12 in flight for 1 replica: 1.5 replicas' worth, under the 2x panic threshold.
  AutoscalerDecision d = a.Step(Obs(1, 12), kT0);
  EXPECT_EQ(d.mode, AutoscalerMode::kStable);
  EXPECT_DOUBLE_EQ(d.stable_ratio, 1.5);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_EQ(d.reason, "ScaleUp");
}

TEST(Autoscaler, ToleranceBandAvoidsScalingForNoise) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  EXPECT_EQ(a.Step(Obs(1, 8.7), kT0).replicas, 1);  // 1.09 replicas: within 10%
  Autoscaler b(ConcurrencyOnly(), kT0);
  EXPECT_EQ(b.Step(Obs(1, 9.2), kT0).replicas, 2);  // 1.15: beyond it
}

TEST(Autoscaler, StartingReplicasCountAsCapacity) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(1, 12);
  EXPECT_EQ(a.Step(o, kT0).replicas, 2);
  // The second replica is starting (no metrics, not ready): the load is the same, 1.5
  // replicas' worth, and 2 are there, so nothing more is asked for while it starts.
  o.replicas = 2;
  o.engines.push_back(Engine("engine-new", 0, Phase::kStarting));
  AutoscalerTime t = kT0 + 2s;
  AutoscalerDecision d = RunFor(a, o, t, 60s);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_EQ(d.reason, "Stable");
}

TEST(Autoscaler, ScaleUpIsBoundedPerStep) {
  AutoscalerConfig c = ConcurrencyOnly();
  c.panic_threshold = 1000;  // keep this a stable-mode test
  Autoscaler a(c, kT0);
  AutoscalerObservation o = Obs(1, 100);  // 12.5 replicas' worth
  std::vector<int32_t> steps;
  AutoscalerTime t = kT0;
  for (int i = 0; i < 5; ++i, t += 2s) {
    AutoscalerDecision d = a.Step(o, t);
    o.replicas = d.replicas;
    steps.push_back(d.replicas);
  }
  // At most 2x per decision: 1 -> 2 -> 4 -> 8 -> 13, then stays.
  EXPECT_EQ(steps, (std::vector<int32_t>{2, 4, 8, 13, 13}));
}

TEST(Autoscaler, ClampsToMaxReplicas) {
  AutoscalerConfig c = ConcurrencyOnly();
  c.max_replicas = 3;
  Autoscaler a(c, kT0);
  AutoscalerObservation o = Obs(2, 100);
  AutoscalerTime t = kT0;
  EXPECT_EQ(RunFor(a, o, t, 10s).replicas, 3);
}

TEST(Autoscaler, PanicsWhenLoadDoublesAndHoldsItsPeak) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(1, 8);  // exactly one replica's worth
  AutoscalerTime t = kT0;
  EXPECT_EQ(RunFor(a, o, t, 60s).replicas, 1);
  // Load quadruples: the 60 s window barely moves, the 6 s one asks for 4 replicas, over 2x 1.
  o = Obs(1, 32);
  AutoscalerDecision d = a.Step(o, t);
  EXPECT_EQ(d.mode, AutoscalerMode::kPanic);
  EXPECT_EQ(d.reason, "PanicScaleUp");
  EXPECT_EQ(d.replicas, 2);  // bounded: 2x per step
  EXPECT_LT(d.stable_ratio, 1.5);
  o.replicas = d.replicas;
  t += 2s;
  d = a.Step(o, t);
  EXPECT_EQ(d.replicas, 3);  // the 6 s window averages 8, 32, 32: 3 replicas' worth
  o.replicas = d.replicas;
  t += 2s;
  d = a.Step(o, t);
  EXPECT_EQ(d.replicas, 4);
  o.replicas = 4;
  // Load vanishes: no scale-down while panicking, i.e. for a whole stable window after the
  // panic window last asked for 2x the replicas.
  o = Obs(4, 0);
  t += 2s;
  AutoscalerTime last_over = t;
  for (; t < last_over + 50s; t += 2s) {
    d = a.Step(o, t);
    ASSERT_EQ(d.replicas, 4) << "at +" << (t - last_over) / 1s << "s";
  }
  EXPECT_TRUE(a.panicking());
  t = last_over + 70s;
  d = a.Step(o, t);
  EXPECT_FALSE(a.panicking());
  EXPECT_EQ(d.mode, AutoscalerMode::kStable);
}

TEST(Autoscaler, ScalesDownOneDrainedReplicaAtATimeAfterTheDelay) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(4, 8);  // one replica's worth on four
  o.engines[0].running = 3;
  o.engines[1].running = 1;  // the least loaded
  o.engines[2].running = 2;
  o.engines[3].running = 2;
  for (auto& e : o.engines) e.in_flight = static_cast<int64_t>(e.running);
  AutoscalerTime t = kT0;
  AutoscalerDecision d;
  // Not before a full scale_down_delay (60 s) of samples.
  for (; t < kT0 + 60s; t += 2s) {
    d = a.Step(o, t);
    ASSERT_EQ(d.replicas, 4);
    ASSERT_TRUE(d.drain.empty());
  }
  d = a.Step(o, t);
  EXPECT_EQ(d.reason, "Draining");
  EXPECT_EQ(d.replicas, 4);
  EXPECT_EQ(d.drain, std::vector<std::string>{"engine-1"});
  EXPECT_EQ(a.draining_pod(), "engine-1");
  // The engine turns unready and reports its last request.
  o.engines[1].draining = true;
  o.engines[1].phase = Phase::kStarting;  // the kubelet saw /ready fail
  o.engines[1].in_flight = 1;
  t += 2s;
  d = a.Step(o, t);
  EXPECT_EQ(d.reason, "Draining");
  EXPECT_EQ(d.drain, std::vector<std::string>{"engine-1"});  // renewed
  o.engines[1].in_flight = 0;
  t += 2s;
  d = a.Step(o, t);
  EXPECT_EQ(d.reason, "ScaleDown");
  EXPECT_EQ(d.replicas, 3);
  EXPECT_EQ(d.remove_pod, "engine-1");
  // The pod goes; the next replica is drained only now (one at a time).
  o.replicas = 3;
  o.engines[1].phase = Phase::kTerminating;
  t += 2s;
  d = a.Step(o, t);
  EXPECT_EQ(d.reason, "Draining");
  EXPECT_EQ(d.replicas, 3);
  ASSERT_EQ(d.drain.size(), 1u);
  EXPECT_NE(d.drain[0], "engine-1");
}

TEST(Autoscaler, ADipShorterThanTheDelayDoesNotScaleDown) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(2, 16);
  AutoscalerTime t = kT0;
  RunFor(a, o, t, 90s);
  // 40 s of nothing, then the load is back: the stable average never fell to one replica's
  // worth for a whole delay.
  AutoscalerObservation idle = Obs(2, 0);
  AutoscalerDecision d = RunFor(a, idle, t, 40s);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_TRUE(d.drain.empty());
  d = RunFor(a, o, t, 60s);
  EXPECT_EQ(d.replicas, 2);
}

TEST(Autoscaler, LoadComingBackCancelsTheDrain) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(2, 4);
  AutoscalerTime t = kT0;
  AutoscalerDecision d = RunFor(a, o, t, 62s);
  ASSERT_EQ(d.reason, "Draining");
  const std::string pod = a.draining_pod();
  // A burst that one replica could not take: the drain ends at once, before the windows
  // (which average it with what came before) see it.
  o = Obs(2, 12);
  d = a.Step(o, t);
  EXPECT_EQ(d.undrain, std::vector<std::string>{pod});
  EXPECT_EQ(d.reason, "DrainCancelled");
  EXPECT_EQ(d.replicas, 2);
  EXPECT_EQ(a.draining_pod(), "");
  // And the next scale-down waits a whole delay again.
  o = Obs(2, 4);
  t += 2s;
  d = RunFor(a, o, t, 58s);
  EXPECT_EQ(d.reason, "Stable");
}

TEST(Autoscaler, DrainTimeoutRemovesTheReplicaAnyway) {
  AutoscalerConfig c = ConcurrencyOnly();
  c.drain_timeout = 20s;
  Autoscaler a(c, kT0);
  AutoscalerObservation o = Obs(2, 2);
  AutoscalerTime t = kT0;
  AutoscalerDecision d = RunFor(a, o, t, 62s);
  ASSERT_EQ(d.reason, "Draining");
  for (auto& e : o.engines) {
    e.draining = e.pod == a.draining_pod();
    e.in_flight = 1;  // a long stream that will not end
  }
  for (int i = 0; i < 9; ++i, t += 2s) ASSERT_EQ(a.Step(o, t).replicas, 2);
  d = a.Step(o, t + 2s);
  EXPECT_EQ(d.reason, "DrainTimeout");
  EXPECT_EQ(d.replicas, 1);
}

TEST(Autoscaler, AReplicaThatNeverStartedGoesFirstWithoutWaiting) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(2, 4);
  o.replicas = 3;
  o.engines.push_back(Engine("engine-9", 0, Phase::kStarting));
  AutoscalerTime t = kT0;
  AutoscalerDecision d;
  for (; t <= kT0 + 60s; t += 2s) d = a.Step(o, t);
  EXPECT_EQ(d.reason, "ScaleDown");
  EXPECT_EQ(d.replicas, 2);
  EXPECT_EQ(d.remove_pod, "engine-9");
}

TEST(Autoscaler, NoScaleDownDuringARolloutsSurge) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(2, 0);
  o.engines.push_back(Engine("engine-surge", 0, Phase::kStarting));
  AutoscalerTime t = kT0;
  AutoscalerDecision d = RunFor(a, o, t, 80s);
  EXPECT_EQ(d.reason, "RolloutInProgress");
  EXPECT_EQ(d.replicas, 2);
}

AutoscalerConfig ToZero() {
  AutoscalerConfig c = ConcurrencyOnly();
  c.min_replicas = 0;
  c.scale_to_zero_after = 300s;
  return c;
}

TEST(Autoscaler, ScalesToZeroAfterTheIdleTimeNotBefore) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerObservation o = Obs(1, 0);
  AutoscalerTime t = kT0;
  AutoscalerDecision d;
  for (; t < kT0 + 300s; t += 2s) {
    d = a.Step(o, t);
    ASSERT_EQ(d.replicas, 1);  // min 1 until idle: the scale-down delay alone is not enough
    ASSERT_TRUE(d.drain.empty()) << (t - kT0) / 1s;
  }
  d = a.Step(o, t);
  EXPECT_EQ(d.reason, "Draining");
  o.engines[0].draining = true;
  o.engines[0].in_flight = 0;
  d = a.Step(o, t + 1s);
  EXPECT_EQ(d.reason, "Draining");  // routers get drain_settle (2 s) to notice
  d = a.Step(o, t + 2s);
  EXPECT_EQ(d.reason, "ScaleToZero");
  EXPECT_EQ(d.replicas, 0);
  EXPECT_EQ(d.remove_pod, "engine-0");
}

TEST(Autoscaler, ARequestRestartsTheIdleTimer) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerObservation idle = Obs(1, 0);
  AutoscalerTime t = kT0;
  RunFor(a, idle, t, 200s);
  AutoscalerObservation one = Obs(1, 1);
  RunFor(a, one, t, 2s);
  AutoscalerDecision d = RunFor(a, idle, t, 298s);
  EXPECT_TRUE(d.drain.empty());
  EXPECT_EQ(d.replicas, 1);
  d = RunFor(a, idle, t, 4s);
  EXPECT_EQ(d.reason, "Draining");
}

TEST(Autoscaler, HeldRequestsBringItBackFromZero) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerObservation o;
  o.replicas = 0;
  o.routers.push_back({"router-a", true, 0, 0});
  AutoscalerTime t = kT0;
  EXPECT_EQ(RunFor(a, o, t, 30s).replicas, 0);
  o.routers[0].in_flight = 3;
  o.routers[0].held = 3;
  AutoscalerDecision d = a.Step(o, t);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_EQ(d.reason, "ScaleFromZero");
}

TEST(Autoscaler, ARoutersActivationCountsAsActivity) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerObservation o;
  o.replicas = 0;
  o.routers.push_back({"router-a", true, 0, 0});
  AutoscalerTime t = kT0;
  RunFor(a, o, t, 600s);
  // A router patched /scale 0 -> 1; its held request is not in this scrape yet.
  o.replicas = 1;
  o.engines.push_back(Engine("engine-0", 0, Phase::kStarting));
  AutoscalerDecision d = RunFor(a, o, t, 290s);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_TRUE(d.drain.empty());
}

TEST(Autoscaler, ARequestArrivingDuringTheLastDrainCancelsIt) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerObservation o = Obs(1, 0);
  AutoscalerTime t = kT0;
  AutoscalerDecision d = RunFor(a, o, t, 302s);
  ASSERT_EQ(d.reason, "Draining");
  // The only replica is unready; the router holds the new request (its test-0 patch fails:
  // replicas is still 1).
  o.engines[0].draining = true;
  o.routers[0] = {"router-a", true, 1, 1};
  d = a.Step(o, t);
  EXPECT_EQ(d.undrain, std::vector<std::string>{"engine-0"});
  EXPECT_EQ(d.replicas, 1);
}

TEST(Autoscaler, FrozenWhenMetricsAreMissing) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerTime t = kT0;
  // With the router gone, nothing moves: not up for the engines' queues, not down to zero.
  AutoscalerObservation o = Obs(2, 0);
  o.routers.clear();
  o.engines[0].waiting = 50;
  AutoscalerDecision d = RunFor(a, o, t, 900s);
  EXPECT_EQ(d.mode, AutoscalerMode::kFrozen);
  EXPECT_EQ(d.reason, "MetricsMissing");
  EXPECT_EQ(d.replicas, 2);
  EXPECT_NE(d.message.find("no ready router"), std::string::npos);
  // A ready engine that could not be scraped freezes it too.
  o = Obs(2, 0);
  o.engines[1].metrics_ok = false;
  d = a.Step(o, t);
  EXPECT_EQ(d.mode, AutoscalerMode::kFrozen);
  EXPECT_NE(d.message.find("engine-1"), std::string::npos);
  // Back: the windows and the idle timer start over, so no scale-down for a delay.
  o = Obs(2, 0);
  d = RunFor(a, o, t, 58s);
  EXPECT_EQ(d.mode, AutoscalerMode::kStable);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_TRUE(d.drain.empty());
}

TEST(Autoscaler, StandsDownWhenAnHpaTargetsTheService) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(1, 100);
  o.hpa = "qwen-hpa";
  AutoscalerDecision d = a.Step(o, kT0);
  EXPECT_EQ(d.mode, AutoscalerMode::kStandDown);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_NE(d.message.find("qwen-hpa"), std::string::npos);
}

TEST(Autoscaler, AnotherLeadersDrainIsGivenBack) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(2, 16);
  o.engines[1].draining = true;
  AutoscalerDecision d = a.Step(o, kT0);
  EXPECT_EQ(d.undrain, std::vector<std::string>{"engine-1"});
}

TEST(Autoscaler, WaitingAndKvSignalsScaleToo) {
  AutoscalerConfig c;
  c.max_replicas = 10;
  c.panic_threshold = 100;
  Autoscaler a(c, kT0);
  AutoscalerObservation o = Obs(2, 4);
  o.engines[0].waiting = 3;
  o.engines[1].waiting = 2;
  o.routers[0].held = 1;  // held requests wait too: 6 waiting / 2 per replica = 3 replicas
  AutoscalerDecision d = a.Step(o, kT0);
  EXPECT_DOUBLE_EQ(d.waiting, 6);
  EXPECT_DOUBLE_EQ(d.stable_ratio, 3);
  EXPECT_EQ(d.replicas, 3);
  Autoscaler b(c, kT0);
  o = Obs(2, 4);
  o.engines[0].kv_usage = 0.9;
  o.engines[1].kv_usage = 0.9;  // 1.8 / 0.8 = 2.25 replicas
  d = b.Step(o, kT0);
  EXPECT_DOUBLE_EQ(d.stable_ratio, 2.25);
  EXPECT_EQ(d.replicas, 3);
}

TEST(Autoscaler, WithoutARouterTheEnginesLoadIsTheConcurrency) {
  Autoscaler a(ConcurrencyOnly(), kT0);
  AutoscalerObservation o = Obs(1, 12);
  o.router_enabled = false;
  o.routers.clear();
  AutoscalerDecision d = a.Step(o, kT0);
  EXPECT_EQ(d.mode, AutoscalerMode::kStable);
  EXPECT_DOUBLE_EQ(d.concurrency, 12);
  EXPECT_EQ(d.replicas, 2);
}

// A sequence of observations that exercises panic, a drain and the idle timer.
std::vector<AutoscalerObservation> Script() {
  std::vector<AutoscalerObservation> s;
  for (int i = 0; i < 40; ++i) s.push_back(Obs(1, 8));
  for (int i = 0; i < 10; ++i) s.push_back(Obs(1, 40));
  for (int i = 0; i < 120; ++i) s.push_back(Obs(1, 2));
  return s;
}

TEST(Autoscaler, StateSurvivesALeaderChange) {
  AutoscalerConfig c = ToZero();
  std::vector<AutoscalerObservation> script = Script();
  // Leader A runs the whole script; leader B takes over from A's saved state half-way (a
  // 10 s gap, the lease expiry) and must decide exactly as A does from then on.
  Autoscaler a(c, kT0);
  std::optional<Autoscaler> b;
  int32_t replicas_a = 1, replicas_b = 1;
  for (size_t i = 0; i < script.size(); ++i) {
    const AutoscalerTime t = kT0 + std::chrono::seconds(2 * i);
    AutoscalerObservation oa = script[i], ob = script[i];
    oa.replicas = replicas_a;
    ob.replicas = replicas_b;
    oa.engines.resize(1);
    ob.engines.resize(1);
    AutoscalerDecision da = a.Step(oa, t);
    replicas_a = da.replicas;
    if (i == 60) {
      Json saved = a.SaveState();
      std::string text = saved.dump();
      Result<Json> parsed = ParseJson(text, "state");
      ASSERT_TRUE(parsed.ok());
      Result<Autoscaler> r = Autoscaler::Restore(c, *parsed, t + 10s, "test");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      b.emplace(std::move(*r));
      replicas_b = replicas_a;
    } else if (b) {
      AutoscalerDecision db = b->Step(ob, t);
      replicas_b = db.replicas;
      EXPECT_EQ(db.replicas, da.replicas) << "step " << i;
      EXPECT_EQ(db.mode, da.mode) << "step " << i;
      EXPECT_EQ(db.reason, da.reason) << "step " << i;
    }
  }
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a.SaveState().dump(), b->SaveState().dump());
}

TEST(Autoscaler, StaleStateStartsOver) {
  Autoscaler a(ToZero(), kT0);
  AutoscalerObservation o = Obs(2, 0);
  AutoscalerTime t = kT0;
  RunFor(a, o, t, 50s);
  Json saved = a.SaveState();
  // Ten minutes later (the operator was down): the idle timer and windows mean nothing.
  Result<Autoscaler> b = Autoscaler::Restore(ToZero(), saved, t + 600s, "test");
  ASSERT_TRUE(b.ok());
  t += 600s;
  AutoscalerDecision d = RunFor(*b, o, t, 58s);
  EXPECT_TRUE(d.drain.empty());
  EXPECT_EQ(d.replicas, 2);
}

TEST(Autoscaler, RestoreRejectsMalformedStateNamingTheSource) {
  for (const char* text :
       {R"([])", R"({"version": 2})", R"({"version": 1, "windowStart": 1})",
        R"({"version":1,"windowStart":1,"lastActive":1,"samples":[[1,2,3]]})",
        R"({"version":1,"windowStart":1,"lastActive":1,"samples":[[1,-2,3,4,5]]})",
        R"({"version":1,"windowStart":1,"lastActive":1,"samples":[[5,0,0,0,0],[1,0,0,0,0]]})"}) {
    Result<Json> j = ParseJson(text, "t");
    ASSERT_TRUE(j.ok());
    Result<Autoscaler> r = Autoscaler::Restore(ConcurrencyOnly(), *j, kT0, "configmap x/y");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find("configmap x/y"), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace kinfer::op
