// Resource types the Kinfer parts touch (group, version, plural, kind, scope) and how their REST
// paths are built: /api/v1/namespaces/NS/pods/NAME, /apis/apps/v1/namespaces/NS/deployments/NAME
// /status.
#pragma once

#include <string>
#include <string_view>

namespace kinfer::k8s {

struct ResourceType {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string plural;   // "deployments"
  std::string kind;     // "Deployment"
  bool namespaced = true;

  // "apps/v1", or "v1" for the core group.
  std::string ApiVersion() const;
  // The collection (empty name) or an object; `ns` is ignored for cluster-scoped types and may
  // be empty for a list across all namespaces.
  std::string Path(std::string_view ns, std::string_view name = {},
                   std::string_view subresource = {}) const;
  // "deployments.apps", as RBAC and error messages name it.
  std::string GroupResource() const;
};

// Core and built-in API groups.
extern const ResourceType kNamespaces;
extern const ResourceType kPods;
extern const ResourceType kServices;
extern const ResourceType kSecrets;
extern const ResourceType kConfigMaps;
extern const ResourceType kServiceAccounts;
extern const ResourceType kPersistentVolumeClaims;
extern const ResourceType kCoreEvents;
extern const ResourceType kEvents;  // events.k8s.io/v1
extern const ResourceType kDeployments;
extern const ResourceType kReplicaSets;
extern const ResourceType kJobs;
extern const ResourceType kPodDisruptionBudgets;
extern const ResourceType kNetworkPolicies;
extern const ResourceType kRoles;
extern const ResourceType kRoleBindings;
extern const ResourceType kLeases;
extern const ResourceType kEndpointSlices;
extern const ResourceType kHorizontalPodAutoscalers;

}  // namespace kinfer::k8s
