// The reconciler's pure core: from an LLMService (and the little the informers observed that
// changes the answer) to the exact objects that should exist for it. No I/O and no clock, so
// the same input always gives the same objects: tests/unit/operator/desired_test.cc compares
// them with golden YAML files.
//
//   KINFER_ASSIGN_OR_RETURN(DesiredState want, Desired(llmservice, config, observed));
//   for (const Json& obj : want.objects) client.Apply(...);   // then prune what is not here
//
// What an LLMService becomes (NAME is its name; every object is in its namespace, labelled
// app.kubernetes.io/managed-by=kinfer-operator and kinfer.dev/llmservice=NAME, and owned by it
// through a controller ownerReference, so deleting it deletes them):
//   Service NAME                 what clients call, port 8000: the router, or the engines when
//                                spec.router.enabled is false
//   Deployment NAME-engine       `kinfer serve` replicas: probes, resources, locked-down
//                                security context, preStop + a grace period above the drain,
//                                rolling updates with maxSurge 1 / maxUnavailable 0
//   Service NAME-engine          headless; the router watches its EndpointSlices
//   Deployment NAME-router       `kinfer router --endpointslices NS/NAME-engine`, with its
//   ServiceAccount/Role/         ServiceAccount allowed to read EndpointSlices in the namespace
//     RoleBinding NAME-router
//   PodDisruptionBudget NAME-engine, NAME-router   maxUnavailable 1
//   NetworkPolicy NAME-engine, NAME-router         only the router reaches the engines' API port
//   PersistentVolumeClaim NAME-model and Job NAME-pull-<revision>   for a hub source with
//                                storage.type pvc: the Job runs `kinfer pull` into the claim once;
//                                the engines start once it has succeeded
// A hub source with storage.type emptyDir pulls in an init container of every engine pod; pvc and
// hostPath sources are mounted read-only as they are.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "operator/llmservice.h"

namespace kinfer::op {

struct ReconcileConfig {
  std::string image;  // the default kinfer image (an LLMService's spec.image overrides it)
  std::string image_pull_policy = "IfNotPresent";
  int pre_stop_seconds = 5;     // endpoints, the router and kube-proxy let go of a pod meanwhile
  int drain_delay_seconds = 5;  // kinfer serve/router --drain-delay
  // Pods allowed to scrape the metrics ports when a NetworkPolicy is on (the operator itself,
  // for the autoscaler).
  std::string operator_namespace;
  std::map<std::string, std::string> operator_pod_labels = {
      {"app.kubernetes.io/name", "kinfer"}, {"app.kubernetes.io/component", "operator"}};
};

// What the informers saw that the answer depends on.
struct ObservedState {
  // The pull Job of the current model revision has succeeded (hub source, pvc storage).
  bool pull_complete = false;
  // The kinfer.dev/model-revision annotation on the live engine Deployment's pod template: the
  // content it runs. Kept while a new revision is being pulled, so replicas keep serving.
  std::string engine_model_revision{};
};

struct DesiredState {
  std::vector<Json> objects;    // in the order to apply them
  std::string model_revision;   // hash of the hub source (hub + pvc), else ""
  std::string pull_job;         // the pull Job's name, or "" when none is wanted
  bool engine_deployed = true;  // false while the first pull runs
};

// The annotation on the engine pod template that names the pulled content it serves.
constexpr const char* kModelRevisionAnnotation = "kinfer.dev/model-revision";

Result<DesiredState> Desired(const LLMService& s, const ReconcileConfig& config,
                             const ObservedState& observed);

// The engine pods' grace period: preStop + drain delay + shutdown timeout + 10 s of margin.
int64_t EngineGracePeriodSeconds(const LLMService& s, const ReconcileConfig& config);

// The objects as a YAML stream ("---" between documents), as `kinfer operator --render` prints
// them and the golden files hold them.
std::string ObjectsYaml(const std::vector<Json>& objects);

// The resource types Desired can produce, in apply order; the controller watches and prunes
// these.
const std::vector<const k8s::ResourceType*>& ChildTypes();

}  // namespace kinfer::op
