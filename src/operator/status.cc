#include "operator/status.h"

#include <map>

namespace kinfer::op {
namespace {

int32_t IntAt(const Json& obj, std::initializer_list<const char*> path) {
  const Json* cur = &obj;
  for (const char* k : path) {
    if (!cur->is_object()) return 0;
    auto it = cur->find(k);
    if (it == cur->end()) return 0;
    cur = &*it;
  }
  return cur->is_number_integer() ? static_cast<int32_t>(cur->get<int64_t>()) : 0;
}

// A Job's outcome from its conditions (batch/v1: Complete / Failed, status "True").
enum class JobState { kRunning, kComplete, kFailed };
JobState JobOutcome(const Json& job, std::string* message) {
  const Json& st = job.contains("status") ? job["status"] : Json::object();
  if (st.contains("conditions") && st["conditions"].is_array()) {
    for (const Json& c : st["conditions"]) {
      if (!c.is_object() || c.value("status", "") != "True") continue;
      std::string type = c.value("type", "");
      if (type == "Complete" || type == "SuccessCriteriaMet") return JobState::kComplete;
      if (type == "Failed" || type == "FailureTarget") {
        *message = c.value("message", c.value("reason", "the pull Job failed"));
        return JobState::kFailed;
      }
    }
  }
  return JobState::kRunning;
}

}  // namespace

RolloutState Rollout(const Json& d) {
  RolloutState r;
  r.desired =
      d.contains("spec") && d["spec"].contains("replicas") ? IntAt(d, {"spec", "replicas"}) : 1;
  r.replicas = IntAt(d, {"status", "replicas"});
  r.updated = IntAt(d, {"status", "updatedReplicas"});
  r.ready = IntAt(d, {"status", "readyReplicas"});
  r.available = IntAt(d, {"status", "availableReplicas"});
  int64_t generation = d.contains("metadata") ? d["metadata"].value("generation", 0) : 0;
  r.observed = IntAt(d, {"status", "observedGeneration"}) >= generation;
  r.complete =
      r.observed && r.updated >= r.desired && r.replicas <= r.updated && r.available >= r.updated;
  if (d.contains("status") && d["status"].contains("conditions") &&
      d["status"]["conditions"].is_array()) {
    for (const Json& c : d["status"]["conditions"]) {
      if (!c.is_object()) continue;
      std::string type = c.value("type", ""), status = c.value("status", "");
      if ((type == "Progressing" && status == "False" &&
           c.value("reason", "") == "ProgressDeadlineExceeded") ||
          (type == "ReplicaFailure" && status == "True")) {
        r.failure = c.value("message", c.value("reason", type));
      }
    }
  }
  return r;
}

Json ComputeStatus(const StatusInputs& in) {
  const LLMService& s = *in.service;
  ChildNames names(s.metadata.name);
  std::string now = k8s::FormatTime(in.now);
  int64_t generation = s.metadata.generation;

  std::vector<k8s::Condition> previous;
  if (s.status.is_object() && s.status.contains("conditions")) {
    auto parsed = k8s::ParseConditions(s.status["conditions"], "status.conditions");
    if (parsed.ok()) previous = std::move(*parsed);
  }
  std::vector<k8s::Condition> conds;
  auto put = [&](const std::string& type, const std::string& status, const std::string& reason,
                 const std::string& message) {
    k8s::Condition c{type, status, reason, message, now, generation};
    for (const k8s::Condition& p : previous) {
      // The time of the last change of status, not of the last write.
      if (p.type == type && p.status == status && !p.last_transition_time.empty()) {
        c.last_transition_time = p.last_transition_time;
      }
    }
    conds.push_back(c);
  };

  RolloutState engine, router;
  if (in.engine_deployment) engine = Rollout(*in.engine_deployment);
  if (in.router_deployment) router = Rollout(*in.router_deployment);
  const bool router_enabled = s.spec.router.enabled;
  const bool pvc_pull = in.desired != nullptr && !in.desired->pull_job.empty();
  std::string pull_message;
  JobState pull = JobState::kRunning;
  if (pvc_pull && in.pull_job != nullptr) pull = JobOutcome(*in.pull_job, &pull_message);

  // ModelReady: the weights are where the replicas read them.
  if (pvc_pull) {
    if (pull == JobState::kComplete) {
      put("ModelReady", "True", "Pulled",
          fmt::format("{} pulled into PersistentVolumeClaim {} by Job {}",
                      s.spec.model.source.hub_url, names.model_pvc, in.desired->pull_job));
    } else if (pull == JobState::kFailed) {
      put("ModelReady", "False", "PullFailed",
          fmt::format("Job {}: {}", in.desired->pull_job, pull_message));
    } else {
      put("ModelReady", "False", "Pulling",
          fmt::format(
              "Job {} is pulling {}{}", in.desired->pull_job, s.spec.model.source.hub_url,
              in.desired->engine_deployed ? "; the replicas serve the previous revision" : ""));
    }
  } else if (engine.ready > 0) {
    put("ModelReady", "True", "Loaded",
        fmt::format("{} replica(s) have loaded {}", engine.ready, s.spec.model.name));
  } else if (s.spec.replicas == 0) {
    put("ModelReady", "Unknown", "ScaledToZero", "no replica runs to load the model");
  } else {
    put("ModelReady", "False", "Loading", "no replica has loaded the model yet");
  }

  // Available: requests are answered.
  if (s.spec.replicas == 0) {
    put("Available", "False", "ScaledToZero", "spec.replicas is 0");
  } else if (engine.ready == 0) {
    put("Available", "False", "NoReadyReplicas",
        fmt::format("0 of {} engine replicas ready", s.spec.replicas));
  } else if (router_enabled && router.ready == 0) {
    put("Available", "False", "RouterNotReady",
        fmt::format("{} engine replica(s) ready, but no router replica", engine.ready));
  } else {
    put("Available", "True", "ReplicasReady",
        router_enabled
            ? fmt::format("{} of {} engine replicas and {} of {} routers ready", engine.ready,
                          s.spec.replicas, router.ready, s.spec.router.replicas)
            : fmt::format("{} of {} engine replicas ready", engine.ready, s.spec.replicas));
  }

  // Progressing: a change is being rolled out.
  if (in.desired != nullptr && !in.desired->engine_deployed) {
    put("Progressing", "True", "Pulling", "waiting for the model pull before starting replicas");
  } else if (in.engine_deployment != nullptr && !engine.complete) {
    put("Progressing", "True", "RollingOut",
        fmt::format("engine: {} of {} replicas updated, {} available", engine.updated,
                    engine.desired, engine.available));
  } else if (router_enabled && in.router_deployment != nullptr && !router.complete) {
    put("Progressing", "True", "RollingOut",
        fmt::format("router: {} of {} replicas updated, {} available", router.updated,
                    router.desired, router.available));
  } else if (in.engine_deployment == nullptr) {
    put("Progressing", "True", "Creating", "the engine Deployment does not exist yet");
  } else {
    put("Progressing", "False", "Complete", "every replica runs the current spec");
  }

  // Degraded: something needs a person.
  if (!in.error.empty()) {
    put("Degraded", "True", in.error_reason, in.error);
  } else if (pvc_pull && pull == JobState::kFailed) {
    put("Degraded", "True", "PullFailed", pull_message);
  } else if (!engine.failure.empty()) {
    put("Degraded", "True", "EngineRolloutFailed", engine.failure);
  } else if (!router.failure.empty()) {
    put("Degraded", "True", "RouterRolloutFailed", router.failure);
  } else {
    put("Degraded", "False", "AsExpected", "");
  }

  Json status = {{"observedGeneration", generation},
                 {"replicas", engine.replicas},
                 {"readyReplicas", engine.ready},
                 {"updatedReplicas", engine.updated},
                 {"selector", k8s::LabelSelector(EngineSelector(s))},
                 {"endpoint", fmt::format("http://{}.{}.svc:8000", names.entry_service,
                                          s.metadata.namespace_)}};
  if (router_enabled) status["routerReadyReplicas"] = router.ready;
  Json list = Json::array();
  for (const k8s::Condition& c : conds) list.push_back(c.ToJson());
  status["conditions"] = list;
  return status;
}

std::vector<ConditionEvent> TransitionEvents(const Json& before, const Json& after) {
  std::map<std::string, std::string> old_status;
  if (before.is_object() && before.contains("conditions")) {
    auto parsed = k8s::ParseConditions(before["conditions"], "status.conditions");
    if (parsed.ok()) {
      for (const k8s::Condition& c : *parsed) old_status[c.type] = c.status;
    }
  }
  std::vector<ConditionEvent> out;
  auto parsed = k8s::ParseConditions(after.value("conditions", Json::array()), "status.conditions");
  if (!parsed.ok()) return out;
  for (const k8s::Condition& c : *parsed) {
    auto it = old_status.find(c.type);
    std::string was = it == old_status.end() ? "" : it->second;
    if (was == c.status) continue;
    std::string note = c.message.empty() ? c.reason : c.message;
    if (c.type == "Available") {
      if (c.status == "True")
        out.push_back({k8s::EventType::kNormal, "Available", note});
      else if (was == "True")
        out.push_back({k8s::EventType::kWarning, "Unavailable", note});
    } else if (c.type == "ModelReady") {
      if (c.status == "True")
        out.push_back({k8s::EventType::kNormal, "ModelReady", note});
      else if (c.reason == "PullFailed")
        out.push_back({k8s::EventType::kWarning, "PullFailed", note});
    } else if (c.type == "Progressing") {
      if (c.status == "True")
        out.push_back({k8s::EventType::kNormal, c.reason, note});
      else if (was == "True")
        out.push_back({k8s::EventType::kNormal, "RolloutComplete", note});
    } else if (c.type == "Degraded") {
      if (c.status == "True")
        out.push_back({k8s::EventType::kWarning, c.reason, note});
      else if (was == "True")
        out.push_back({k8s::EventType::kNormal, "Recovered", "no longer degraded"});
    }
  }
  return out;
}

}  // namespace kinfer::op
