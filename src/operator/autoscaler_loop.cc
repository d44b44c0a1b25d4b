#include "operator/autoscaler_loop.h"

#include <pthread.h>

#include <set>

#include <fmt/format.h>

#include "core/log.h"
#include "k8s/objects.h"
#include "k8s/scale.h"
#include "operator/autoscale_observe.h"
#include "operator/autoscaling_spec.h"
#include "operator/llmservice.h"
#include "operator/prometheus_text.h"
#include "server/metrics.h"

namespace kinfer::op {
namespace {

// The pod the ReplicaSet deletes first: the lowest cost goes first (default 0).
constexpr const char* kRemoveFirstCost = "-1000";
// On a state ConfigMap: the LLMService it belongs to, "namespace/name" (the ConfigMap's name
// alone is ambiguous when names contain '-').
constexpr const char* kStateOwnerAnnotation = "kinfer.dev/llmservice";
constexpr const char* kStateSelector =
    "app.kubernetes.io/managed-by=kinfer-operator,app.kubernetes.io/component=autoscaler";

// The HPA in `hpas` whose scaleTargetRef is this LLMService, or "".
std::string TargetingHpa(const std::vector<Json>& hpas, const std::string& name) {
  for (const Json& h : hpas) {
    const Json* ref = nullptr;
    if (h.contains("spec") && h["spec"].is_object() && h["spec"].contains("scaleTargetRef")) {
      ref = &h["spec"]["scaleTargetRef"];
    }
    if (ref == nullptr || !ref->is_object()) continue;
    if (ref->value("kind", "") == kLLMServices.kind && ref->value("name", "") == name) {
      return h["metadata"].value("name", "");
    }
  }
  return "";
}

}  // namespace

std::string AutoscalerStateName(std::string_view ns, std::string_view name) {
  return fmt::format("kinfer-autoscaler-{}-{}", ns, name);
}

AutoscalerLoop::AutoscalerLoop(k8s::Client& client, AutoscalerLoopOptions options,
                               server::MetricsRegistry* metrics)
    : client_(client), options_(std::move(options)) {
  if (metrics != nullptr) {
    desired_gauge_ = &metrics->Gauge("kinfer_autoscaler_desired_replicas",
                                     "Replicas the autoscaler asks for, per LLMService");
    mode_gauge_ = &metrics->Gauge(
        "kinfer_autoscaler_mode",
        "1 for the autoscaler's mode per LLMService (stable, panic, frozen, stand_down)");
    writes_counter_ = &metrics->Counter(
        "kinfer_autoscaler_scale_writes",
        "Writes of an LLMService's /scale by the autoscaler, by result (ok, changed, error)");
  }
}

AutoscalerLoop::~AutoscalerLoop() { Stop(); }

void AutoscalerLoop::Start(std::stop_token leading) {
  Stop();
  thread_ = std::jthread([this, leading](std::stop_token own) {
    while (!own.stop_requested() && !leading.stop_requested()) {
      const auto t0 = std::chrono::steady_clock::now();
      // Either token ends the tick's API calls and scrapes.
      std::stop_source both;
      std::stop_callback a(own, [&] { both.request_stop(); });
      std::stop_callback b(leading, [&] { both.request_stop(); });
      Tick(std::chrono::system_clock::now(), both.get_token());
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(mu);
      cv.wait_until(lk, both.get_token(), t0 + options_.period, [] { return false; });
    }
  });
  pthread_setname_np(thread_.native_handle(), "kinfer-autoscale");
  KINFER_LOG_INFO("autoscaler started (every {} ms; state in namespace {})",
                  options_.period.count(), options_.state_namespace);
}

void AutoscalerLoop::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
    KINFER_LOG_INFO("autoscaler stopped");
  }
  std::lock_guard<std::mutex> lk(mu_);
  entries_.clear();
}

void AutoscalerLoop::Tick(AutoscalerTime now, std::stop_token stop) {
  auto list = client_.List(kLLMServices, options_.watch_namespace, {}, stop);
  if (!list.ok()) {
    if (list.status().code() != StatusCode::kCancelled) {
      KINFER_LOG_WARN("autoscaler: {}", list.status().ToString());
    }
    return;
  }
  std::set<std::string> seen;
  for (const Json& obj : list->items) {
    if (stop.stop_requested()) return;
    const Json& meta = obj["metadata"];
    const std::string key =
        fmt::format("{}/{}", meta.value("namespace", ""), meta.value("name", ""));
    seen.insert(key);
    Status s = TickOne(obj, now, stop);
    if (!s.ok() && s.code() != StatusCode::kCancelled) {
      KINFER_LOG_WARN("autoscaler: {}: {}", key, s.ToString());
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    std::erase_if(entries_, [&](const auto& e) { return !seen.contains(e.first); });
  }
  if (now - last_collect_ >= options_.save_period && !stop.stop_requested()) {
    last_collect_ = now;
    CollectStaleState(seen, stop);
  }
}

void AutoscalerLoop::CollectStaleState(const std::set<std::string>& live, std::stop_token stop) {
  k8s::ListOptions lo;
  lo.label_selector = kStateSelector;
  auto list = client_.List(k8s::kConfigMaps, options_.state_namespace, lo, stop);
  if (!list.ok()) {
    if (list.status().code() != StatusCode::kCancelled) {
      KINFER_LOG_WARN("autoscaler: listing state ConfigMaps: {}", list.status().ToString());
    }
    return;
  }
  for (const Json& cm : list->items) {
    const Json& meta = cm["metadata"];
    std::string owner;
    if (meta.contains("annotations") && meta["annotations"].is_object()) {
      owner = meta["annotations"].value(kStateOwnerAnnotation, "");
    }
    const size_t slash = owner.find('/');
    if (slash == std::string::npos || live.contains(owner)) continue;
    // Another operator may watch another namespace and keep its state here too.
    if (!options_.watch_namespace.empty() &&
        owner.compare(0, slash, options_.watch_namespace) != 0) {
      continue;
    }
    const std::string name = meta.value("name", "");
    Status s = client_.Delete(k8s::kConfigMaps, options_.state_namespace, name, {}, stop);
    if (s.ok() || k8s::IsNotFound(s)) {
      KINFER_LOG_INFO("autoscaler: deleted the state of {} (configmap {}/{}): it is gone", owner,
                      options_.state_namespace, name);
    } else if (s.code() != StatusCode::kCancelled) {
      KINFER_LOG_WARN("autoscaler: deleting configmap {}/{}: {}", options_.state_namespace, name,
                      s.ToString());
    }
  }
}

Result<std::unique_ptr<Autoscaler>> AutoscalerLoop::Load(const std::string& ns,
                                                         const std::string& name,
                                                         const AutoscalerConfig& config,
                                                         AutoscalerTime now, std::stop_token stop) {
  const std::string cm = AutoscalerStateName(ns, name);
  auto got = client_.Get(k8s::kConfigMaps, options_.state_namespace, cm, {}, stop);
  if (!got.ok() && !k8s::IsNotFound(got.status())) return got.status();
  if (got.ok() && got->contains("data") && (*got)["data"].contains("state")) {
    const std::string source = fmt::format("configmap {}/{}: state", options_.state_namespace, cm);
    Json state = Json::parse((*got)["data"]["state"].get<std::string>(), nullptr, false);
    if (!state.is_discarded()) {
      auto r = Autoscaler::Restore(config, state, now, source);
      if (r.ok()) {
        KINFER_LOG_INFO("autoscaler: {}/{}: resumed from {}", ns, name, source);
        return std::make_unique<Autoscaler>(std::move(*r));
      }
      KINFER_LOG_WARN("autoscaler: {}; starting afresh", r.status().ToString());
    } else {
      KINFER_LOG_WARN("autoscaler: {}: not JSON; starting afresh", source);
    }
  }
  return std::make_unique<Autoscaler>(config, now);
}

Status AutoscalerLoop::Save(const std::string& ns, const std::string& name, const Autoscaler& a,
                            std::stop_token stop) {
  Json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata",
              {{"name", AutoscalerStateName(ns, name)},
               {"namespace", options_.state_namespace},
               {"labels",
                {{"app.kubernetes.io/managed-by", "kinfer-operator"},
                 {"app.kubernetes.io/component", "autoscaler"}}},
               {"annotations", {{kStateOwnerAnnotation, fmt::format("{}/{}", ns, name)}}}}},
             {"data", {{"state", a.SaveState().dump()}}}};
  k8s::ApplyOptions ao;
  ao.field_manager = options_.field_manager;
  return client_.Apply(k8s::kConfigMaps, options_.state_namespace, cm, ao, stop).status();
}

Status AutoscalerLoop::SetCondition(const Json& obj, const AutoscalerDecision& d,
                                    std::stop_token stop) {
  const bool active = d.mode == AutoscalerMode::kStable || d.mode == AutoscalerMode::kPanic;
  Json patch = {
      {"apiVersion", kLLMServices.ApiVersion()},
      {"kind", kLLMServices.kind},
      {"metadata",
       {{"name", obj["metadata"]["name"]}, {"namespace", obj["metadata"]["namespace"]}}},
      {"status",
       {{"conditions",
         Json::array(
             {{{"type", "Autoscaling"},
               {"status", active ? "True" : "False"},
               {"reason", d.reason.empty() ? "Unknown" : d.reason},
               {"message", d.message},
               {"observedGeneration", obj["metadata"].value("generation", int64_t{0})},
               {"lastTransitionTime", k8s::FormatTime(std::chrono::system_clock::now())}}})}}}};
  k8s::ApplyOptions ao;
  ao.field_manager = options_.field_manager;
  ao.subresource = "status";
  return client_.Apply(kLLMServices, obj["metadata"].value("namespace", ""), patch, ao, stop)
      .status();
}

Status AutoscalerLoop::Label(const std::string& ns, const std::string& pod, bool serving,
                             std::stop_token stop) {
  Json patch = {{"metadata", {{"labels", {{kServingLabel, serving ? "true" : "false"}}}}}};
  auto r = client_.Patch(k8s::kPods, ns, pod, k8s::PatchType::kMerge, patch, {},
                         options_.field_manager, stop);
  if (!r.ok() && k8s::IsNotFound(r.status())) return Status::Ok();  // gone already
  if (r.ok()) {
    KINFER_LOG_INFO("autoscaler: pod {}/{} {}", ns, pod,
                    serving ? "serves again (drain cancelled)" : "drains (out of the Services)");
  }
  return r.status();
}

Status AutoscalerLoop::TickOne(const Json& obj, AutoscalerTime now, std::stop_token stop) {
  KINFER_ASSIGN_OR_RETURN(LLMService s, ParseLLMService(obj));
  const std::string& ns = s.metadata.namespace_;
  const std::string& name = s.metadata.name;
  const std::string key = fmt::format("{}/{}", ns, name);
  const Json& spec = obj["spec"];
  if (!s.spec.autoscaling || !spec.contains("autoscaling")) {
    std::lock_guard<std::mutex> lk(mu_);
    entries_.erase(key);
    return Status::Ok();
  }
  KINFER_ASSIGN_OR_RETURN(
      AutoscalerConfig config,
      ParseAutoscalingSpec(spec["autoscaling"], s.spec.engine.shutdown_timeout_seconds,
                           key + ": spec.autoscaling"));
  if (config.min_replicas == 0 && !s.spec.router.enabled) {
    // Nobody would bring it back from zero.
    config.min_replicas = 1;
  }

  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.uid != s.metadata.uid) {
      entries_.erase(it);
      it = entries_.end();
    }
    if (it != entries_.end()) entry = &it->second;
  }
  if (entry == nullptr) {
    KINFER_ASSIGN_OR_RETURN(auto a, Load(ns, name, config, now, stop));
    std::lock_guard<std::mutex> lk(mu_);
    Entry& e = entries_[key];
    e.autoscaler = std::move(a);
    e.uid = s.metadata.uid;
    e.last_save = now;
    entry = &e;
  } else {
    entry->autoscaler->SetConfig(config);
  }

  // What the cluster shows.
  ObserveInput in;
  in.replicas = s.spec.replicas;
  in.router_enabled = s.spec.router.enabled;
  in.engine_port = options_.api_port;
  KINFER_ASSIGN_OR_RETURN(
      k8s::ObjectList engines,
      client_.List(k8s::kPods, ns, {.label_selector = k8s::LabelSelector(EngineSelector(s))},
                   stop));
  k8s::ObjectList routers;
  if (s.spec.router.enabled) {
    KINFER_ASSIGN_OR_RETURN(
        routers, client_.List(k8s::kPods, ns,
                              {.label_selector = k8s::LabelSelector(RouterSelector(s))}, stop));
  }
  KINFER_ASSIGN_OR_RETURN(k8s::ObjectList hpas,
                          client_.List(k8s::kHorizontalPodAutoscalers, ns, {}, stop));
  in.hpa = TargetingHpa(hpas.items, name);

  // Scrape every pod that has an address (routers only when ready: Observe ignores the rest).
  std::vector<std::string> urls;
  std::vector<ScrapedPod*> targets;
  for (const Json& p : routers.items) in.routers.push_back({ViewPod(p), std::nullopt});
  for (const Json& p : engines.items) in.engines.push_back({ViewPod(p), std::nullopt});
  auto want = [&](ScrapedPod& sp, bool router) {
    if (sp.pod.ip.empty() || sp.pod.terminating || (router && !sp.pod.ready)) return;
    const int port = sp.pod.metrics_port > 0 ? sp.pod.metrics_port : options_.metrics_port;
    urls.push_back(fmt::format("http://{}:{}/metrics", sp.pod.ip, port));
    targets.push_back(&sp);
  };
  for (ScrapedPod& r : in.routers) want(r, true);
  for (ScrapedPod& e : in.engines) want(e, false);
  std::vector<FetchResult> got = FetchAll(urls, options_.fetch, stop);
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].ok()) targets[i]->metrics = ParsePrometheusText(got[i].body);
  }
  if (stop.stop_requested()) return Status(StatusCode::kCancelled, "stopped");

  const AutoscalerObservation observation = Observe(in);
  Autoscaler& a = *entry->autoscaler;
  const AutoscalerDecision d = a.Step(observation, now);

  // Carry it out: undrain, drain, then the step down or up.
  std::map<std::string, bool> serving;
  for (const ScrapedPod& e : in.engines) serving[e.pod.name] = e.pod.serving;
  for (const std::string& pod : d.undrain) {
    if (serving.contains(pod) && !serving[pod]) KINFER_RETURN_IF_ERROR(Label(ns, pod, true, stop));
  }
  for (const std::string& pod : d.drain) {
    if (serving.contains(pod) && serving[pod]) KINFER_RETURN_IF_ERROR(Label(ns, pod, false, stop));
  }
  if (d.replicas != observation.replicas) {
    if (!d.remove_pod.empty()) {
      Json patch = {
          {"metadata", {{"annotations", {{kPodDeletionCostAnnotation, kRemoveFirstCost}}}}}};
      auto r = client_.Patch(k8s::kPods, ns, d.remove_pod, k8s::PatchType::kMerge, patch, {},
                             options_.field_manager, stop);
      if (!r.ok() && !k8s::IsNotFound(r.status())) return r.status();
    }
    Status w = k8s::SetReplicasIf(client_, kLLMServices, ns, name, observation.replicas, d.replicas,
                                  options_.field_manager, stop);
    const char* result = w.ok() ? "ok" : k8s::IsReplicasChanged(w) ? "changed" : "error";
    if (writes_counter_ != nullptr) writes_counter_->Add({{"llmservice", key}, {"result", result}});
    if (w.ok()) {
      KINFER_LOG_INFO("autoscaler: {}: replicas {} -> {} ({}: {})", key, observation.replicas,
                      d.replicas, d.reason, d.message);
    } else if (!k8s::IsReplicasChanged(w)) {
      return w;
    }
  }
  if (desired_gauge_ != nullptr) desired_gauge_->Set({{"llmservice", key}}, d.replicas);
  if (mode_gauge_ != nullptr) {
    for (AutoscalerMode m : {AutoscalerMode::kStable, AutoscalerMode::kPanic,
                             AutoscalerMode::kFrozen, AutoscalerMode::kStandDown}) {
      mode_gauge_->Set({{"llmservice", key}, {"mode", std::string(AutoscalerModeName(m))}},
                       m == d.mode ? 1 : 0);
    }
  }
  if (d.reason != entry->condition_reason) {
    Status c = SetCondition(obj, d, stop);
    if (c.ok()) {
      entry->condition_reason = d.reason;
    } else {
      KINFER_LOG_WARN("autoscaler: {}: condition Autoscaling: {}", key, c.ToString());
    }
  }
  if (now - entry->last_save >= options_.save_period || !d.drain.empty() ||
      d.replicas != observation.replicas) {
    Status sv = Save(ns, name, a, stop);
    if (sv.ok()) {
      entry->last_save = now;
    } else {
      KINFER_LOG_WARN("autoscaler: {}: saving the state: {}", key, sv.ToString());
    }
  }
  return Status::Ok();
}

}  // namespace kinfer::op
