// operator/autoscaling_spec.h: what the API server stores for spec.autoscaling (defaults applied,
// int-or-string numbers as written) becomes the autoscaler's config; bad values name the field.
// The reference is the CRD (deploy/crds/kinfer.dev_llmservices.yaml): its defaults, and objects
// in the shapes the API server accepted in tests/k8s.
#include "operator/autoscaling_spec.h"

#include <gtest/gtest.h>

namespace kinfer::op {
namespace {

using namespace std::chrono_literals;

Json J(const char* text) { return *ParseJson(text, "test"); }

TEST(AutoscalingSpec, TheCrdsDefaults) {
  // What the API server stores for `autoscaling: {}`.
  Result<AutoscalerConfig> c = ParseAutoscalingSpec(
      J(R"({"maxReplicas": 4, "maxScaleUpRate": "2", "minReplicas": 1, "panicThreshold": "2",
            "panicWindow": "6s", "scaleDownDelay": "60s", "stableWindow": "60s",
            "targetConcurrency": 8, "targetKVCacheUsage": "0.8", "targetRequestsWaiting": 2})"),
      30, "llm/q: spec.autoscaling");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->min_replicas, 1);
  EXPECT_EQ(c->max_replicas, 4);
  EXPECT_EQ(c->target_concurrency, 8);
  EXPECT_EQ(c->target_waiting, 2);
  EXPECT_DOUBLE_EQ(c->target_kv_usage, 0.8);
  EXPECT_EQ(c->panic_threshold, 2);
  EXPECT_EQ(c->max_scale_up_rate, 2);
  EXPECT_EQ(c->stable_window, 60s);
  EXPECT_EQ(c->panic_window, 6s);
  EXPECT_EQ(c->scale_down_delay, 60s);
  EXPECT_FALSE(c->scale_to_zero_after.has_value());
  EXPECT_EQ(c->drain_timeout, 30s);
  // An object written before these fields existed gets the same.
  Result<AutoscalerConfig> old = ParseAutoscalingSpec(J(R"({"minReplicas": 1})"), 30, "x");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->target_concurrency, 8);
  EXPECT_EQ(old->stable_window, 60s);
}

TEST(AutoscalingSpec, ScaleToZeroAndWrittenValues) {
  Result<AutoscalerConfig> c =
      ParseAutoscalingSpec(J(R"({"minReplicas": 0, "maxReplicas": 3, "scaleToZeroAfter": "1h2m3s",
            "targetConcurrency": "2.5", "targetKVCacheUsage": 0, "stableWindow": "2m",
            "panicWindow": "10s", "scaleDownDelay": "0s"})"),
                           0, "x");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->min_replicas, 0);
  EXPECT_EQ(*c->scale_to_zero_after, 3723s);
  EXPECT_EQ(c->target_concurrency, 2.5);
  EXPECT_EQ(c->target_kv_usage, 0);
  EXPECT_EQ(c->stable_window, 120s);
  EXPECT_EQ(c->scale_down_delay, 0s);
  EXPECT_EQ(c->drain_timeout, AutoscalerConfig{}.drain_timeout);
}

TEST(AutoscalingSpec, BadValuesNameTheField) {
  struct Case {
    const char* json;
    const char* want;
  } cases[] = {
      {R"({"targetConcurrency": "many"})",
       "llm/q: spec.autoscaling.targetConcurrency: expected a number"},
      {R"({"targetConcurrency": -1})", "targetConcurrency: must be a finite number >= 0"},
      {R"({"targetKVCacheUsage": 2})", "targetKVCacheUsage"},
      {R"({"stableWindow": "1d"})", "stableWindow: \"1d\" is not a duration"},
      {R"({"panicWindow": "2m"})", "llm/q: spec.autoscaling: autoscaling.panicWindow"},
      {R"({"panicWindow": 6})", "panicWindow: expected a duration"},
      {R"({"minReplicas": 0})", "scaleToZeroAfter"},
      {R"({"panicThreshold": "1"})", "panicThreshold"},
      {R"({"targetConcurrency": 0, "targetRequestsWaiting": 0, "targetKVCacheUsage": 0})",
       "every target is 0"},
      {R"([])", "expected an object"},
  };
  for (const Case& k : cases) {
    Result<AutoscalerConfig> c = ParseAutoscalingSpec(J(k.json), 30, "llm/q: spec.autoscaling");
    ASSERT_FALSE(c.ok()) << k.json;
    EXPECT_NE(c.status().message().find(k.want), std::string::npos)
        << k.json << " -> " << c.status().message();
  }
}

TEST(AutoscalingSpec, DurationsAsTheCrdPatternAllows) {
  EXPECT_EQ(*ParseCrdDuration("90s"), 90s);
  EXPECT_EQ(*ParseCrdDuration("15m"), 900s);
  EXPECT_EQ(*ParseCrdDuration("1h30m"), 5400s);
  EXPECT_EQ(*ParseCrdDuration("0s"), 0s);
  for (const char* bad : {"", "s", "1", "1x", "1s1m", "1m1m", "-1s", "1.5s", "1h 2m"}) {
    EXPECT_FALSE(ParseCrdDuration(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace kinfer::op
