// The LLMService's status from what the reconcile saw: conditions (ModelReady, Available,
// Progressing, Degraded) whose lastTransitionTime moves only when their status changes,
// observedGeneration, replica counts, the scale selector and the endpoint URL; and the Events a
// change of condition deserves. Pure: the clock is an argument.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/json.h"
#include "k8s/events.h"
#include "k8s/objects.h"
#include "operator/desired.h"
#include "operator/llmservice.h"

namespace kinfer::op {

struct StatusInputs {
  const LLMService* service = nullptr;
  const DesiredState* desired = nullptr;  // null when the spec could not be turned into objects
  // The live children (as the apply returned them, or as the informer has them); null if absent.
  const Json* engine_deployment = nullptr;
  const Json* router_deployment = nullptr;
  const Json* pull_job = nullptr;
  std::string error{};  // why the reconcile failed ("" if it did not)
  std::string error_reason = "ReconcileFailed";
  std::chrono::system_clock::time_point now;
};

// The whole status object the operator owns (what it applies to the status subresource).
Json ComputeStatus(const StatusInputs& in);

struct ConditionEvent {
  k8s::EventType type;
  std::string reason;
  std::string note;
};
// Events for conditions whose status changed between `before` and `after` (status objects).
std::vector<ConditionEvent> TransitionEvents(const Json& before, const Json& after);

// The rollout of a Deployment as `kubectl rollout status` judges it.
struct RolloutState {
  int32_t desired = 0, replicas = 0, updated = 0, ready = 0, available = 0;
  bool observed = false;  // status.observedGeneration caught up with metadata.generation
  bool complete = false;  // observed, and every replica updated and available
  std::string failure;    // ProgressDeadlineExceeded or ReplicaFailure message, if any
};
RolloutState Rollout(const Json& deployment);

}  // namespace kinfer::op
