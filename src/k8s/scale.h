// The scale subresource (autoscaling/v1 Scale) of any scalable object: read it, and set
// spec.replicas only if it still holds the value the caller saw, so several writers racing
// (two routers bringing a model up from zero, the autoscaler and a `kubectl scale`) cannot undo
// each other's change.
//
//   KINFER_ASSIGN_OR_RETURN(Scale s, GetScale(client, op::kLLMServices, "llm", "qwen"));
//   Status st = SetReplicasIf(client, op::kLLMServices, "llm", "qwen", /*from=*/0, /*to=*/1);
//   if (IsReplicasChanged(st)) { /* someone else moved it first: nothing to do */ }
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/status.h"
#include "k8s/client.h"

namespace kinfer::k8s {

struct Scale {
  int32_t spec_replicas = 0;
  int32_t status_replicas = 0;
  std::string selector;  // status.selector: the label selector of the pods
};

Result<Scale> GetScale(Client& client, const ResourceType& type, std::string_view ns,
                       std::string_view name, std::stop_token stop = {});

// A JSON Patch on NAME/scale: [{test /spec/replicas == from}, {replace /spec/replicas = to}]
// (from 0: [{test /spec == {}}, {add /spec/replicas = to}], as a Scale at 0 has no replicas
// member). The API server applies both or neither, atomically with other writes. When spec.replicas
// was not `from`, the error is kFailedPrecondition ("llm/qwen: replicas is 2, not 0"): see
// IsReplicasChanged. Other errors (a validation rule refusing `to`, no permission) come back as the
// API server said them.
Status SetReplicasIf(Client& client, const ResourceType& type, std::string_view ns,
                     std::string_view name, int32_t from, int32_t to,
                     std::string_view field_manager = "kinfer-operator", std::stop_token stop = {});

// Whether SetReplicasIf failed only because spec.replicas was no longer `from`.
bool IsReplicasChanged(const Status& s);

}  // namespace kinfer::k8s
