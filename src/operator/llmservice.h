// The LLMService custom resource (kinfer.dev/v1alpha1, deploy/crds/kinfer.dev_llmservices.yaml)
// as a C++ type: parsed from the API server's JSON with the CRD's defaults applied again (an
// object written before a default existed lacks it), and the names and labels of the objects the
// operator makes for it. The operator's namespace is kinfer::op, since `operator` is a keyword.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "k8s/objects.h"
#include "k8s/resource.h"

namespace kinfer::op {

extern const k8s::ResourceType kLLMServices;

struct SecretKeyRef {
  std::string name;
  std::string key;
};

struct ModelSource {
  enum class Kind { kHub, kPvc, kHostPath };
  Kind kind = Kind::kPvc;
  // hub
  std::string hub_url;  // hf://ORG/NAME[@REV]
  std::vector<std::string> hub_include;
  std::string hub_endpoint;
  std::optional<SecretKeyRef> hub_token;
  // pvc
  std::string claim_name;
  // hostPath
  std::string host_path;
};

// Quantities as Kubernetes writes them ("2Gi", "500m", 4) kept as text: they pass through to pod
// specs unchanged.
using ResourceList = std::map<std::string, std::string>;

struct LLMServiceSpec {
  struct Model {
    std::string name;
    std::string path;
    ModelSource source;
  } model;
  std::string image;
  struct Engine {
    std::optional<int64_t> max_model_len, max_num_seqs, max_num_batched_tokens, threads;
    std::string kv_cache_memory;  // a quantity
    int64_t shutdown_timeout_seconds = 30;
    std::vector<std::string> extra_args;
  } engine;
  struct Resources {
    ResourceList requests, limits;
    int64_t gpu = 0;
  } resources;
  int32_t replicas = 1;
  struct Autoscaling {
    int32_t min_replicas = 1, max_replicas = 4;
    std::string target_requests_waiting = "2";
    std::string scale_to_zero_after;
  };
  std::optional<Autoscaling> autoscaling;
  struct Router {
    bool enabled = true;
    int32_t replicas = 2;
    std::string policy = "prefixAware";
    ResourceList requests, limits;
  } router;
  struct Storage {
    std::string type = "pvc";  // pvc | emptyDir
    std::string size = "20Gi";
    std::string storage_class_name;
    std::string access_mode = "ReadWriteOnce";
  } storage;
  std::optional<SecretKeyRef> auth;
  struct NetworkPolicy {
    bool enabled = true;
    std::vector<Json> allow_from;    // NetworkPolicyPeers for the API port, as written
    std::vector<Json> metrics_from;  // NetworkPolicyPeers for the metrics port (Prometheus)
  } network_policy;
};

struct LLMService {
  k8s::ObjectMeta metadata;
  LLMServiceSpec spec;
  Json status;  // as the API server has it (null when none)
  Json raw;     // the whole object

  // The ownerReference every child carries (controller: true, blockOwnerDeletion: true).
  k8s::OwnerReference OwnerRef() const;
};

// Parses an LLMService. The API server has already checked the schema; this re-checks what the
// operator relies on (so a hand-edited status or an older CRD cannot crash it) and names the
// field in its errors ("qwen: spec.engine.kvCacheMemory: ...").
Result<LLMService> ParseLLMService(const Json& obj);

// A Kubernetes quantity in bytes ("2Gi" -> 2147483648, "1.5G" -> 1500000000, 4096 -> 4096).
Result<int64_t> QuantityBytes(const Json& q, std::string_view field);

// Names of the children (the CRD limits metadata.name to 40 characters, so these stay DNS labels).
struct ChildNames {
  explicit ChildNames(const std::string& service);
  std::string entry_service;    // <name>: what clients call (router, or engines without one)
  std::string engine;           // <name>-engine: Deployment, headless Service, PDB, NetworkPolicy
  std::string router;           // <name>-router: Deployment, PDB, NetworkPolicy, SA, Role, binding
  std::string model_pvc;        // <name>-model
  std::string pull_job_prefix;  // <name>-pull- (+ a hash of what is pulled)
};

// The labels every child carries, and the subsets that select engine and router pods.
constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
constexpr const char* kManagedByValue = "kinfer-operator";
constexpr const char* kServiceLabel = "kinfer.dev/llmservice";
std::map<std::string, std::string> CommonLabels(const LLMService& s);
std::map<std::string, std::string> EngineSelector(const LLMService& s);
// Engine pods carry kinfer.dev/serving="true" from their template; the engine Services
// (NAME-engine, and NAME without a router) select it too, the Deployment's selector does not.
// Setting it to "false" on one pod takes it out of every EndpointSlice (no router sends it new
// requests) while it stays in its ReplicaSet: the autoscaler drains the replica it removes this
// way.
constexpr const char* kServingLabel = "kinfer.dev/serving";
std::map<std::string, std::string> EngineServingSelector(const LLMService& s);
std::map<std::string, std::string> RouterSelector(const LLMService& s);
// spec.autoscaling.minReplicas is 0 and the router is on: the routers bring replicas back.
bool ScalesToZero(const LLMService& s);

// The router's --policy for the CRD's policy name (prefixAware -> prefix, ...).
std::string RouterPolicyFlag(const std::string& crd_policy);

}  // namespace kinfer::op
