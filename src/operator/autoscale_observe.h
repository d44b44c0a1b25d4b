// From what the cluster shows (pods, their labels and conditions) and what their /metrics said
// this tick to the autoscaler's observation (autoscaler.h). Pure, so each rule is unit-tested
// with the JSON the API server and the binaries really produce.
//
// The drain protocol lives in pod labels: an engine pod the autoscaler is removing carries
// kinfer.dev/serving=false, which takes it out of the engine Services' selectors (the
// Deployment's selector does not include the label, so the pod stays in its ReplicaSet); the
// EndpointSlice drops it and every router stops sending to it. It is empty once no router
// lists it as routable and neither the routers nor its engine report a request for it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "operator/autoscaler.h"
#include "operator/llmservice.h"
#include "operator/prometheus_text.h"

namespace kinfer::op {

// kServingLabel (llmservice.h) keeps an engine pod in its Services; "false" while it drains.
// The annotation the ReplicaSet controller reads to choose which pod to delete first.
constexpr const char* kPodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost";

struct PodView {
  std::string name, ip;
  bool ready = false;        // condition Ready is True
  bool terminating = false;  // metadata.deletionTimestamp is set
  bool serving = true;       // kinfer.dev/serving is not "false"
  // The container ports named "http" and "metrics" (0 when the pod names none).
  int http_port = 0, metrics_port = 0;
};
PodView ViewPod(const Json& pod);

struct ScrapedPod {
  PodView pod;
  std::optional<PromText> metrics;  // nullopt: not scraped (no IP, or the GET failed)
};

struct ObserveInput {
  int32_t replicas = 0;  // the LLMService's spec.replicas
  bool router_enabled = true;
  int engine_port = 8000;  // the routers name backends "IP:PORT" (the pod's "http" port first)
  std::vector<ScrapedPod> routers;  // every router pod
  std::vector<ScrapedPod> engines;  // every engine pod
  std::string hpa;                  // an HPA targeting the LLMService, or ""
};

AutoscalerObservation Observe(const ObserveInput& in);

// The engine metrics the autoscaler reads, by either Kinfer's or vLLM's names (kinfer: wins).
struct EngineLoad {
  std::optional<double> waiting, running, kv_usage;
};
EngineLoad ReadEngineLoad(const PromText& m);

}  // namespace kinfer::op
