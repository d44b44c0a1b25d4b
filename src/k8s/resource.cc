#include "k8s/resource.h"

#include <fmt/format.h>

namespace kinfer::k8s {

std::string ResourceType::ApiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceType::Path(std::string_view ns, std::string_view name,
                               std::string_view subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += fmt::format("/namespaces/{}", ns);
  p += "/" + plural;
  if (!name.empty()) {
    p += "/";
    p += name;
    if (!subresource.empty()) {
      p += "/";
      p += subresource;
    }
  }
  return p;
}

std::string ResourceType::GroupResource() const {
  return group.empty() ? plural : plural + "." + group;
}

const ResourceType kNamespaces{"", "v1", "namespaces", "Namespace", false};
const ResourceType kPods{"", "v1", "pods", "Pod", true};
const ResourceType kServices{"", "v1", "services", "Service", true};
const ResourceType kSecrets{"", "v1", "secrets", "Secret", true};
const ResourceType kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
const ResourceType kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const ResourceType kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims",
                                           "PersistentVolumeClaim", true};
const ResourceType kCoreEvents{"", "v1", "events", "Event", true};
const ResourceType kEvents{"events.k8s.io", "v1", "events", "Event", true};
const ResourceType kDeployments{"apps", "v1", "deployments", "Deployment", true};
const ResourceType kReplicaSets{"apps", "v1", "replicasets", "ReplicaSet", true};
const ResourceType kJobs{"batch", "v1", "jobs", "Job", true};
const ResourceType kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets",
                                         "PodDisruptionBudget", true};
const ResourceType kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy",
                                    true};
const ResourceType kRoles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
const ResourceType kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                                 true};
const ResourceType kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
const ResourceType kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice",
                                   true};
const ResourceType kHorizontalPodAutoscalers{"autoscaling", "v2", "horizontalpodautoscalers",
                                             "HorizontalPodAutoscaler", true};

}  // namespace kinfer::k8s
