#include "operator/autoscale_observe.h"

#include <fmt/format.h>

namespace kinfer::op {
namespace {

std::optional<double> Either(const PromText& m, const char* name) {
  if (auto v = m.Sum(fmt::format("kinfer:{}", name))) return v;
  return m.Sum(fmt::format("vllm:{}", name));
}

}  // namespace

PodView ViewPod(const Json& pod) {
  PodView v;
  const Json& meta = pod.contains("metadata") ? pod["metadata"] : Json::object();
  if (meta.contains("name") && meta["name"].is_string()) v.name = meta["name"].get<std::string>();
  v.terminating = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
  if (meta.contains("labels") && meta["labels"].is_object() &&
      meta["labels"].contains(kServingLabel)) {
    const Json& l = meta["labels"][kServingLabel];
    v.serving = !(l.is_string() && l.get<std::string>() == "false");
  }
  if (pod.contains("spec") && pod["spec"].is_object() && pod["spec"].contains("containers") &&
      pod["spec"]["containers"].is_array()) {
    for (const Json& c : pod["spec"]["containers"]) {
      if (!c.is_object() || !c.contains("ports") || !c["ports"].is_array()) continue;
      for (const Json& p : c["ports"]) {
        if (!p.is_object() || !p.contains("containerPort") ||
            !p["containerPort"].is_number_integer())
          continue;
        const std::string n = p.value("name", "");
        const int port = p["containerPort"].get<int>();
        if (n == "http" && v.http_port == 0) v.http_port = port;
        if (n == "metrics" && v.metrics_port == 0) v.metrics_port = port;
      }
    }
  }
  if (pod.contains("status") && pod["status"].is_object()) {
    const Json& st = pod["status"];
    if (st.contains("podIP") && st["podIP"].is_string()) v.ip = st["podIP"].get<std::string>();
    if (st.contains("conditions") && st["conditions"].is_array()) {
      for (const Json& c : st["conditions"]) {
        if (c.is_object() && c.value("type", "") == "Ready")
          v.ready = c.value("status", "") == "True";
      }
    }
  }
  return v;
}

EngineLoad ReadEngineLoad(const PromText& m) {
  EngineLoad l;
  l.waiting = Either(m, "num_requests_waiting");
  l.running = Either(m, "num_requests_running");
  l.kv_usage = Either(m, "kv_cache_usage_perc");
  if (!l.kv_usage) l.kv_usage = Either(m, "gpu_cache_usage_perc");  // vLLM before 0.10
  return l;
}

AutoscalerObservation Observe(const ObserveInput& in) {
  using Phase = EngineObservation::Phase;
  AutoscalerObservation o;
  o.replicas = in.replicas;
  o.router_enabled = in.router_enabled;
  o.hpa = in.hpa;
  for (const ScrapedPod& r : in.routers) {
    // Only routers that take traffic count; one starting or stopping has nothing to say yet.
    if (!r.pod.ready || r.pod.terminating) continue;
    RouterObservation ro;
    ro.pod = r.pod.name;
    if (r.metrics) {
      std::optional<double> inflight = r.metrics->Sum("kinfer_router_inflight");
      std::optional<double> held = r.metrics->Sum("kinfer_router_held");
      ro.metrics_ok = inflight.has_value();
      ro.in_flight = inflight.value_or(0);
      ro.held = held.value_or(0);
    }
    o.routers.push_back(std::move(ro));
  }
  for (const ScrapedPod& e : in.engines) {
    EngineObservation eo;
    eo.pod = e.pod.name;
    eo.phase = e.pod.terminating ? Phase::kTerminating
               : e.pod.ready     ? Phase::kReady
                                 : Phase::kStarting;
    eo.draining = !e.pod.serving;
    if (e.metrics) {
      EngineLoad l = ReadEngineLoad(*e.metrics);
      eo.metrics_ok = l.waiting.has_value() && l.running.has_value();
      eo.waiting = l.waiting.value_or(0);
      eo.running = l.running.value_or(0);
      eo.kv_usage = l.kv_usage.value_or(0);
    }
    // In flight: unknown while any router may still send to it; else what the routers still
    // count for it plus what its engine has.
    const std::string backend =
        fmt::format("{}:{}", e.pod.ip, e.pod.http_port > 0 ? e.pod.http_port : in.engine_port);
    bool routable = false, known = eo.metrics_ok;
    double router_inflight = 0;
    for (const ScrapedPod& r : in.routers) {
      if (!r.pod.ready || r.pod.terminating) continue;
      if (!r.metrics) {
        known = false;
        continue;
      }
      if (e.pod.ip.empty()) continue;
      std::optional<double> healthy =
          r.metrics->Sum("kinfer_router_backend_healthy", {{"backend", backend}});
      routable = routable || healthy.value_or(0) > 0;
      router_inflight +=
          r.metrics->Sum("kinfer_router_backend_inflight", {{"backend", backend}}).value_or(0);
    }
    eo.in_flight =
        routable || !known ? -1 : static_cast<int64_t>(router_inflight + eo.running + eo.waiting);
    o.engines.push_back(std::move(eo));
  }
  return o;
}

}  // namespace kinfer::op
