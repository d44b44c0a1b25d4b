// The autoscaler at work in the operator's leader: every `period` it lists the LLMServices that
// have spec.autoscaling, their engine and router pods and the HPAs of their namespaces, scrapes
// every ready pod's /metrics, steps each LLMService's Autoscaler (autoscaler.h) and carries out
// its decision through the API server:
//  - drain: the pod's kinfer.dev/serving label to "false" (the engine Services drop it), and
//    back to "true" to cancel;
//  - remove: controller.kubernetes.io/pod-deletion-cost on the drained pod, so the ReplicaSet
//    deletes that one, then spec.replicas through /scale (a compare-and-swap on the count it saw:
//    a router's 0 -> 1 or a `kubectl scale` meanwhile wins, and the next tick sees it);
//  - the condition Autoscaling on the LLMService's status (server-side apply as
//    fieldManager kinfer-autoscaler, so the controller's own conditions stay), when its reason
//    changes;
//  - the windows, every `save_period`, into the ConfigMap kinfer-autoscaler-<ns>-<name> in the
//    operator's namespace, from which the next leader resumes; as often, the ConfigMaps of
//    LLMServices that are gone are deleted (an owner reference cannot cross namespaces, so the
//    garbage collector never would).
//
//   AutoscalerLoop loop(client, {.state_namespace = "kinfer-system"}, &metrics);
//   on_started_leading: loop.Start(leading);   on_stopped_leading: loop.Stop();
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>

#include "core/json.h"
#include "core/status.h"
#include "k8s/client.h"
#include "operator/autoscaler.h"
#include "operator/http_fetch.h"

namespace kinfer::server {
class MetricsRegistry;
class MetricFamily;
}  // namespace kinfer::server

namespace kinfer::op {

struct AutoscalerLoopOptions {
  std::string state_namespace{};  // where the window-state ConfigMaps live (the operator's)
  std::string watch_namespace{};  // the LLMServices of this namespace ("" for all)
  std::chrono::milliseconds period{2000};
  std::chrono::milliseconds save_period{10000};
  FetchOptions fetch{};
  int api_port = 8000;      // the routers name backends "POD_IP:api_port"
  int metrics_port = 9090;  // engines' and routers' /metrics
  std::string field_manager = "kinfer-autoscaler";
};

// The ConfigMap that keeps an LLMService's autoscaler state.
std::string AutoscalerStateName(std::string_view ns, std::string_view name);

class AutoscalerLoop {
 public:
  AutoscalerLoop(k8s::Client& client, AutoscalerLoopOptions options,
                 server::MetricsRegistry* metrics);
  ~AutoscalerLoop();
  AutoscalerLoop(const AutoscalerLoop&) = delete;
  AutoscalerLoop& operator=(const AutoscalerLoop&) = delete;

  // Runs ticks on its own thread ("kinfer-autoscale") until `leading` fires or Stop().
  void Start(std::stop_token leading);
  // Joins the thread and forgets every autoscaler (the next leader, maybe this one, restores).
  void Stop();

  // One pass over every LLMService; what Start's thread does every period. Errors of one
  // LLMService are logged and do not stop the others.
  void Tick(AutoscalerTime now, std::stop_token stop = {});

 private:
  struct Entry {
    std::unique_ptr<Autoscaler> autoscaler;
    std::string uid;  // a new object under the same name starts over
    AutoscalerTime last_save{};
    std::string condition_reason;  // last written
  };
  Status TickOne(const Json& obj, AutoscalerTime now, std::stop_token stop);
  Result<std::unique_ptr<Autoscaler>> Load(const std::string& ns, const std::string& name,
                                           const AutoscalerConfig& config, AutoscalerTime now,
                                           std::stop_token stop);
  Status Save(const std::string& ns, const std::string& name, const Autoscaler& a,
              std::stop_token stop);
  Status SetCondition(const Json& obj, const AutoscalerDecision& d, std::stop_token stop);
  Status Label(const std::string& ns, const std::string& pod, bool serving, std::stop_token stop);
  // Deletes the state ConfigMaps whose LLMService ("namespace/name") is not in `live`.
  void CollectStaleState(const std::set<std::string>& live, std::stop_token stop);

  k8s::Client& client_;
  AutoscalerLoopOptions options_;
  server::MetricFamily* desired_gauge_ = nullptr;
  server::MetricFamily* mode_gauge_ = nullptr;
  server::MetricFamily* writes_counter_ = nullptr;
  std::mutex mu_;  // entries_ (Tick runs on one thread at a time)
  std::map<std::string, Entry> entries_;
  AutoscalerTime last_collect_{};  // CollectStaleState's last run (Tick's thread only)
  std::jthread thread_;
};

}  // namespace kinfer::op
