// operator/autoscale_observe.h: pods as the API server returns them and /metrics as kinfer serve,
// vLLM and kinfer router print them, turned into the autoscaler's observation. The references
// are those formats (a Pod's conditions and deletionTimestamp; the kinfer:/vllm: gauge names; the
// router's kinfer_router_* gauges).
#include "operator/autoscale_observe.h"

#include <gtest/gtest.h>

namespace kinfer::op {
namespace {

using Phase = EngineObservation::Phase;

Json Pod(const std::string& name, const std::string& ip, bool ready, bool serving = true,
         bool terminating = false) {
  Json p = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"labels", {{"app", "x"}}}}},
            {"status",
             {{"phase", "Running"},
              {"podIP", ip},
              {"conditions", Json::array({{{"type", "Initialized"}, {"status", "True"}},
                                          {{"type", "Ready"}, {"status", ready ? "True" : "False"}},
                                          {{"type", "ContainersReady"}, {"status", "True"}}})}}}};
  if (!serving) p["metadata"]["labels"][kServingLabel] = "false";
  if (terminating) p["metadata"]["deletionTimestamp"] = "2026-11-27T14:00:00Z";
  return p;
}

ScrapedPod Scraped(const Json& pod, const std::string& metrics) {
  return {ViewPod(pod), ParsePrometheusText(metrics)};
}

TEST(AutoscaleObserve, ViewPodReadsConditionsLabelsAndDeletion) {
  PodView v = ViewPod(Pod("e-1", "10.0.0.5", true));
  EXPECT_EQ(v.name, "e-1");
  EXPECT_EQ(v.ip, "10.0.0.5");
  EXPECT_TRUE(v.ready);
  EXPECT_TRUE(v.serving);
  EXPECT_FALSE(v.terminating);
  v = ViewPod(Pod("e-2", "", false, false, true));
  EXPECT_FALSE(v.ready);
  EXPECT_FALSE(v.serving);
  EXPECT_TRUE(v.terminating);
  EXPECT_EQ(v.http_port, 0);
  Json named = Pod("e-3", "10.0.0.7", true);
  named["spec"] = {
      {"containers",
       Json::array({{{"name", "kinfer"},
                     {"ports", Json::array({{{"name", "http"}, {"containerPort", 8000}},
                                            {{"name", "metrics"}, {"containerPort", 9090}}})}}})}};
  v = ViewPod(named);
  EXPECT_EQ(v.http_port, 8000);
  EXPECT_EQ(v.metrics_port, 9090);
  // A pod just created: no status at all.
  v = ViewPod(Json{{"metadata", {{"name", "new"}}}});
  EXPECT_EQ(v.name, "new");
  EXPECT_FALSE(v.ready);
  EXPECT_TRUE(v.ip.empty());
}

TEST(AutoscaleObserve, ReadsKinferAndVllmNames) {
  EngineLoad k =
      ReadEngineLoad(ParsePrometheusText("kinfer:num_requests_waiting{model_name=\"m\"} "
                                         "2\nkinfer:num_requests_running{model_name=\"m\"} "
                                         "5\nkinfer:kv_cache_usage_perc{model_name=\"m\"} "
                                         "0.5\nvllm:num_requests_running{model_name=\"m\"} "
                                         "5\n"));
  EXPECT_EQ(*k.waiting, 2);
  EXPECT_EQ(*k.running, 5);
  EXPECT_EQ(*k.kv_usage, 0.5);
  EngineLoad v = ReadEngineLoad(ParsePrometheusText(
      "vllm:num_requests_waiting{model_name=\"m\"} 1\nvllm:num_requests_running{model_name=\"m\"} "
      "3\nvllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\n"));
  EXPECT_EQ(*v.waiting, 1);
  EXPECT_EQ(*v.kv_usage, 0.25);
  EXPECT_FALSE(ReadEngineLoad(ParsePrometheusText("other 1\n")).running.has_value());
}

const char* kEngineMetrics =
    "kinfer:num_requests_waiting{model_name=\"m\"} 1\n"
    "kinfer:num_requests_running{model_name=\"m\"} 3\n"
    "kinfer:kv_cache_usage_perc{model_name=\"m\"} 0.4\n";

TEST(AutoscaleObserve, SumsRoutersAndReadsEngines) {
  ObserveInput in;
  in.replicas = 2;
  in.routers.push_back(
      Scraped(Pod("r-1", "10.1.0.1", true),
              "kinfer_router_inflight{model=\"m\"} 5\nkinfer_router_held{model=\"m\"} 1\n"
              "kinfer_router_backend_healthy{backend=\"10.0.0.5:8000\"} 1\n"
              "kinfer_router_backend_inflight{backend=\"10.0.0.5:8000\"} 4\n"));
  // A router that is not ready yet is not asked (and does not freeze the autoscaler).
  in.routers.push_back({ViewPod(Pod("r-2", "10.1.0.2", false)), std::nullopt});
  in.engines.push_back(Scraped(Pod("e-1", "10.0.0.5", true), kEngineMetrics));
  in.engines.push_back({ViewPod(Pod("e-2", "", false)), std::nullopt});
  AutoscalerObservation o = Observe(in);
  EXPECT_EQ(o.replicas, 2);
  ASSERT_EQ(o.routers.size(), 1u);
  EXPECT_TRUE(o.routers[0].metrics_ok);
  EXPECT_EQ(o.routers[0].in_flight, 5);
  EXPECT_EQ(o.routers[0].held, 1);
  ASSERT_EQ(o.engines.size(), 2u);
  EXPECT_EQ(o.engines[0].phase, Phase::kReady);
  EXPECT_TRUE(o.engines[0].metrics_ok);
  EXPECT_EQ(o.engines[0].waiting, 1);
  EXPECT_EQ(o.engines[0].running, 3);
  EXPECT_DOUBLE_EQ(o.engines[0].kv_usage, 0.4);
  EXPECT_EQ(o.engines[0].in_flight, -1);  // a router still routes to it
  EXPECT_FALSE(o.engines[0].draining);
  EXPECT_EQ(o.engines[1].phase, Phase::kStarting);
  EXPECT_FALSE(o.engines[1].metrics_ok);
}

TEST(AutoscaleObserve, ADrainingEngineIsEmptyOnlyWhenNoRouterNorItselfHasWork) {
  ObserveInput in;
  in.replicas = 2;
  Json victim = Pod("e-1", "10.0.0.5", true, /*serving=*/false);
  // The routers no longer route to it, but one still streams a response from it.
  in.routers.push_back(Scraped(Pod("r-1", "10.1.0.1", true),
                               "kinfer_router_inflight{model=\"m\"} 1\n"
                               "kinfer_router_backend_healthy{backend=\"10.0.0.5:8000\"} 0\n"
                               "kinfer_router_backend_inflight{backend=\"10.0.0.5:8000\"} 1\n"));
  in.routers.push_back(
      Scraped(Pod("r-2", "10.1.0.2", true), "kinfer_router_inflight{model=\"m\"} 0\n"));
  in.engines.push_back(
      Scraped(victim, "kinfer:num_requests_waiting 0\nkinfer:num_requests_running 1\n"));
  AutoscalerObservation o = Observe(in);
  EXPECT_TRUE(o.engines[0].draining);
  EXPECT_EQ(o.engines[0].in_flight, 2);  // the router's stream and the engine's running request
  // Done: gone from the routers' pools, nothing running.
  in.routers[0] = Scraped(Pod("r-1", "10.1.0.1", true), "kinfer_router_inflight{model=\"m\"} 0\n");
  in.engines[0] = Scraped(victim, "kinfer:num_requests_waiting 0\nkinfer:num_requests_running 0\n");
  EXPECT_EQ(Observe(in).engines[0].in_flight, 0);
  // A ready router that could not be scraped: unknown, never "empty".
  in.routers[1].metrics.reset();
  o = Observe(in);
  EXPECT_EQ(o.engines[0].in_flight, -1);
  EXPECT_FALSE(o.routers[1].metrics_ok);
}

TEST(AutoscaleObserve, TerminatingPodsAndTheHpa) {
  ObserveInput in;
  in.replicas = 1;
  in.hpa = "h";
  in.routers.push_back(Scraped(Pod("r-1", "10.1.0.1", true, true, /*terminating=*/true), ""));
  in.engines.push_back(Scraped(Pod("e-1", "10.0.0.5", true, true, true), kEngineMetrics));
  AutoscalerObservation o = Observe(in);
  EXPECT_TRUE(o.routers.empty());  // a router on its way out is not asked
  EXPECT_EQ(o.engines[0].phase, Phase::kTerminating);
  EXPECT_EQ(o.hpa, "h");
}

}  // namespace
}  // namespace kinfer::op
