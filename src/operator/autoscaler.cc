#include "operator/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <fmt/format.h>

namespace kinfer::op {
namespace {

// Replicas for a ratio, ignoring float noise (16 / 8 must be 2, not 3).
int32_t CeilReplicas(double ratio) {
  if (!(ratio > 0)) return 0;
  const double c = std::ceil(ratio - 1e-9);
  return c > 1e6 ? 1000000 : static_cast<int32_t>(c);
}

int64_t ToMillis(AutoscalerTime t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}
AutoscalerTime FromMillis(int64_t ms) { return AutoscalerTime(Millis(ms)); }

std::string Seconds(Millis d) {
  return fmt::format("{:g}s", static_cast<double>(d.count()) / 1000.0);
}

}  // namespace

std::string_view AutoscalerModeName(AutoscalerMode m) {
  switch (m) {
    case AutoscalerMode::kStable:
      return "stable";
    case AutoscalerMode::kPanic:
      return "panic";
    case AutoscalerMode::kFrozen:
      return "frozen";
    case AutoscalerMode::kStandDown:
      return "standDown";
  }
  return "unknown";
}

Status AutoscalerConfig::Validate() const {
  if (min_replicas < 0) return InvalidArgumentError("autoscaling.minReplicas: must be >= 0");
  if (max_replicas < 1) return InvalidArgumentError("autoscaling.maxReplicas: must be >= 1");
  if (min_replicas > max_replicas) {
    return InvalidArgumentError("autoscaling.minReplicas ({}) exceeds maxReplicas ({})",
                                min_replicas, max_replicas);
  }
  for (auto [v, name] : {std::pair{target_concurrency, "targetConcurrency"},
                         std::pair{target_waiting, "targetRequestsWaiting"},
                         std::pair{target_kv_usage, "targetKVCacheUsage"}}) {
    if (!(v >= 0) || !std::isfinite(v)) {
      return InvalidArgumentError("autoscaling.{}: must be a number >= 0, got {}", name, v);
    }
  }
  if (target_kv_usage > 1) {
    return InvalidArgumentError(
        "autoscaling.targetKVCacheUsage: a fraction of the cache, 0-1, "
        "got {}",
        target_kv_usage);
  }
  if (target_concurrency == 0 && target_waiting == 0 && target_kv_usage == 0) {
    return InvalidArgumentError(
        "autoscaling: every target is 0; set targetConcurrency, targetRequestsWaiting or "
        "targetKVCacheUsage");
  }
  if (stable_window.count() <= 0) {
    return InvalidArgumentError("autoscaling.stableWindow: must be above 0");
  }
  if (panic_window.count() <= 0 || panic_window > stable_window) {
    return InvalidArgumentError(
        "autoscaling.panicWindow: must be above 0 and at most "
        "stableWindow ({})",
        Seconds(stable_window));
  }
  if (!(panic_threshold > 1) || !std::isfinite(panic_threshold)) {
    return InvalidArgumentError("autoscaling.panicThreshold: must be above 1, got {}",
                                panic_threshold);
  }
  if (!(max_scale_up_rate > 1) || !std::isfinite(max_scale_up_rate)) {
    return InvalidArgumentError("autoscaling.maxScaleUpRate: must be above 1, got {}",
                                max_scale_up_rate);
  }
  if (scale_down_delay.count() < 0) {
    return InvalidArgumentError("autoscaling.scaleDownDelay: must be >= 0");
  }
  if (min_replicas == 0 && !scale_to_zero_after) {
    return InvalidArgumentError(
        "autoscaling.minReplicas 0 (scale to zero) needs autoscaling.scaleToZeroAfter");
  }
  if (scale_to_zero_after && min_replicas != 0) {
    return InvalidArgumentError("autoscaling.scaleToZeroAfter only applies with minReplicas 0");
  }
  if (scale_to_zero_after && scale_to_zero_after->count() <= 0) {
    return InvalidArgumentError("autoscaling.scaleToZeroAfter: must be above 0");
  }
  if (!(tolerance >= 0 && tolerance < 1)) {
    return InvalidArgumentError("autoscaling tolerance: must be in [0, 1), got {}", tolerance);
  }
  if (drain_settle.count() < 0 || drain_timeout < drain_settle) {
    return InvalidArgumentError("autoscaling drain timeout: must be at least the settle time");
  }
  return Status::Ok();
}

Autoscaler::Autoscaler(AutoscalerConfig config, AutoscalerTime now)
    : config_(std::move(config)), window_start_(now), last_active_(now) {}

double Autoscaler::Ratio(double concurrency, double waiting, double kv) const {
  double r = 0;
  if (config_.target_concurrency > 0) r = std::max(r, concurrency / config_.target_concurrency);
  if (config_.target_waiting > 0) r = std::max(r, waiting / config_.target_waiting);
  if (config_.target_kv_usage > 0) r = std::max(r, kv / config_.target_kv_usage);
  return r;
}

double Autoscaler::WindowRatio(AutoscalerTime now, Millis window) const {
  double c = 0, w = 0, k = 0;
  int n = 0;
  for (auto it = samples_.rbegin(); it != samples_.rend() && it->t > now - window; ++it) {
    c += it->concurrency;
    w += it->waiting;
    k += it->kv;
    ++n;
  }
  if (n == 0) return 0;
  return Ratio(c / n, w / n, k / n);
}

void Autoscaler::Trim(AutoscalerTime now) {
  const Millis keep = std::max(config_.stable_window, config_.scale_down_delay);
  while (!samples_.empty() && samples_.front().t <= now - keep) samples_.pop_front();
}

void Autoscaler::StartOver(AutoscalerTime now) {
  samples_.clear();
  window_start_ = now;
  last_active_ = now;
  panicking_ = false;
  panic_peak_ = 0;
}

void Autoscaler::CancelDrain(AutoscalerDecision& d) {
  if (!drain_) return;
  d.undrain.push_back(drain_->pod);
  drain_.reset();
}

std::optional<std::string> Autoscaler::MissingMetrics(const AutoscalerObservation& obs) {
  if (obs.router_enabled && obs.routers.empty()) {
    return std::string("no ready router to read in-flight and held requests from");
  }
  for (const RouterObservation& r : obs.routers) {
    if (!r.metrics_ok) return fmt::format("router pod {}: /metrics not read", r.pod);
  }
  for (const EngineObservation& e : obs.engines) {
    if (e.phase == EngineObservation::Phase::kReady && !e.metrics_ok) {
      return fmt::format("engine pod {}: /metrics not read", e.pod);
    }
  }
  return std::nullopt;
}

AutoscalerDecision Autoscaler::Step(const AutoscalerObservation& obs, AutoscalerTime now) {
  using Phase = EngineObservation::Phase;
  AutoscalerDecision d;
  d.replicas = obs.replicas;

  // spec.replicas moved by someone else (kubectl scale, a router bringing it up from zero, a
  // write of ours that did not land): their intent counts as activity, and what the windows say
  // about the old count no longer justifies a scale-down.
  if (last_replicas_ && *last_replicas_ != obs.replicas) {
    window_start_ = now;
    last_active_ = now;
    CancelDrain(d);
  }
  last_replicas_ = obs.replicas;

  // Pods draining that are not ours to drain (a previous leader's, cut short): give them back.
  for (const EngineObservation& e : obs.engines) {
    if (e.draining && e.phase != Phase::kTerminating && (!drain_ || drain_->pod != e.pod)) {
      d.undrain.push_back(e.pod);
    }
  }

  if (!obs.hpa.empty()) {
    CancelDrain(d);
    frozen_ = true;  // when the HPA goes, start over: this autoscaler did not watch meanwhile
    d.mode = AutoscalerMode::kStandDown;
    d.reason = "HorizontalPodAutoscaler";
    d.message = fmt::format(
        "HorizontalPodAutoscaler {} targets this LLMService; the built-in autoscaler leaves "
        "/scale to it",
        obs.hpa);
    return d;
  }
  if (std::optional<std::string> missing = MissingMetrics(obs)) {
    CancelDrain(d);
    frozen_ = true;
    d.mode = AutoscalerMode::kFrozen;
    d.reason = "MetricsMissing";
    d.message = fmt::format("replicas held at {}: {}", obs.replicas, *missing);
    return d;
  }
  if (frozen_) {
    StartOver(now);
    frozen_ = false;
  }

  // This tick's signals.
  double concurrency = 0, held = 0, waiting = 0, kv = 0, engine_load = 0;
  for (const RouterObservation& r : obs.routers) {
    concurrency += r.in_flight;
    held += r.held;
  }
  for (const EngineObservation& e : obs.engines) {
    if (e.phase == Phase::kTerminating || !e.metrics_ok) continue;
    waiting += e.waiting;
    kv += e.kv_usage;
    engine_load += e.running + e.waiting;
  }
  if (!obs.router_enabled) concurrency = engine_load;
  waiting += held;
  if (concurrency > 0 || waiting > 0 || engine_load > 0) last_active_ = now;
  d.concurrency = concurrency;
  d.waiting = waiting;
  d.kv_usage = kv;

  samples_.push_back({now, concurrency, waiting, kv, 0});
  Trim(now);
  const double stable = WindowRatio(now, config_.stable_window);
  const double panic = WindowRatio(now, config_.panic_window);
  samples_.back().stable_ratio = stable;
  d.stable_ratio = stable;
  d.panic_ratio = panic;

  // Panic: the short window asks for panic_threshold x what is there (replicas still starting
  // included) or more. Not while no replica is ready, nor for a stable window after one first
  // is: requests pile up at the routers for as long as the cold start lasts, whatever the load,
  // then that pile runs through the first replica; its size says how long the start took, not
  // how much load there is. The stable window still counts it.
  const double capacity = std::max(obs.replicas, 1);
  int ready = 0;
  for (const EngineObservation& e : obs.engines) ready += e.phase == Phase::kReady && !e.draining;
  if (ready == 0) last_unready_ = now;
  const bool backlog = now - last_unready_ < config_.stable_window;
  if (panic / capacity >= config_.panic_threshold && (!backlog || panicking_)) {
    if (!panicking_) panic_peak_ = 0;
    panicking_ = true;
    panic_last_over_ = now;
  } else if (panicking_ && now - panic_last_over_ >= config_.stable_window) {
    panicking_ = false;
    panic_peak_ = 0;
  }

  int32_t want = obs.replicas;
  if (panicking_) {
    d.mode = AutoscalerMode::kPanic;
    want = std::max({CeilReplicas(panic), panic_peak_, obs.replicas});
  } else if (stable > obs.replicas * (1 + config_.tolerance)) {
    want = CeilReplicas(stable);
  }
  want = std::clamp(want, config_.min_replicas, config_.max_replicas);
  if (panicking_) panic_peak_ = want;
  d.recommendation = want;

  if (obs.replicas > config_.max_replicas) {
    // Lowered maxReplicas: straight to it (the replicas removed still drain on SIGTERM).
    CancelDrain(d);
    d.replicas = config_.max_replicas;
    last_replicas_ = d.replicas;
    d.reason = "AboveMaximum";
    d.message =
        fmt::format("{} replicas above maxReplicas; scaling to {}", obs.replicas, d.replicas);
    return d;
  }
  if (want > obs.replicas) {
    int32_t limit = static_cast<int32_t>(
        std::ceil(config_.max_scale_up_rate * std::max(obs.replicas, 1) - 1e-9));
    limit = std::max(limit, obs.replicas + 1);
    // Below minReplicas is corrected at once, whatever the rate.
    d.replicas = std::max(std::min(want, limit), config_.min_replicas);
    CancelDrain(d);
    window_start_ = now;
    last_replicas_ = d.replicas;
    d.reason = obs.replicas < config_.min_replicas ? "BelowMinimum"
               : obs.replicas == 0                 ? "ScaleFromZero"
               : panicking_                        ? "PanicScaleUp"
                                                   : "ScaleUp";
    d.message = fmt::format(
        "{} -> {} replicas: the {} window asks for {:.2f} (concurrency {:g}, waiting {:g}, KV "
        "{:.2f}){}",
        obs.replicas, d.replicas, panicking_ ? "panic" : "stable", panicking_ ? panic : stable,
        concurrency, waiting, kv, d.replicas < want ? fmt::format("; {} wanted", want) : "");
    return d;
  }
  if (panicking_) {
    CancelDrain(d);
    d.reason = "Panic";
    d.message = fmt::format(
        "panicking: the panic window asks for {:.2f} replicas for {}; no "
        "scale-down",
        panic, obs.replicas);
    return d;
  }
  StepDown(obs, now, d);
  return d;
}

void Autoscaler::StepDown(const AutoscalerObservation& obs, AutoscalerTime now,
                          AutoscalerDecision& d) {
  using Phase = EngineObservation::Phase;
  const bool idle = config_.min_replicas == 0 && config_.scale_to_zero_after &&
                    now - last_active_ >= *config_.scale_to_zero_after;
  int32_t target = obs.replicas;
  if (idle) {
    target = 0;
  } else if (now - window_start_ >= config_.scale_down_delay) {
    // The highest recommendation of the whole delay: a dip shorter than it does not count.
    double peak = 0;
    for (auto it = samples_.rbegin(); it != samples_.rend(); ++it) {
      if (it->t <= now - config_.scale_down_delay || it->t < window_start_) break;
      peak = std::max(peak, it->stable_ratio);
    }
    target =
        std::max(std::max(config_.min_replicas, 1), CeilReplicas(peak / (1 - config_.tolerance)));
  }

  // While a replica drains, the others must be able to take what arrives now: a burst that
  // would not fit them cancels the drain at once, without waiting for the windows to see it.
  const bool burst = drain_ && Ratio(d.concurrency, d.waiting, d.kv_usage) >
                                   (obs.replicas - 1) * (1 + config_.tolerance);
  if (target >= obs.replicas || burst) {
    if (drain_) {
      CancelDrain(d);
      window_start_ = now;  // the evidence for a scale-down starts over
      d.reason = "DrainCancelled";
      d.message = "load came back; the replica being drained takes requests again";
    } else {
      d.reason = "Stable";
      d.message = fmt::format("{} replicas for a stable-window ask of {:.2f}", obs.replicas,
                              d.stable_ratio);
    }
    return;
  }

  int non_terminating = 0;
  for (const EngineObservation& e : obs.engines) non_terminating += e.phase != Phase::kTerminating;

  if (!drain_) {
    if (non_terminating < obs.replicas) {
      // A replica not created yet: it goes first, and nothing runs on it.
      d.replicas = obs.replicas - 1;
      last_replicas_ = d.replicas;
      d.reason = d.replicas == 0 ? "ScaleToZero" : "ScaleDown";
      d.message = fmt::format("{} -> {} replicas (one not yet created)", obs.replicas, d.replicas);
      return;
    }
    if (non_terminating > obs.replicas) {
      d.reason = "RolloutInProgress";
      d.message = fmt::format("{} pods for {} replicas (a rollout's surge); scale-down waits",
                              non_terminating, obs.replicas);
      return;
    }
    // The replica to go: one not ready first (nothing runs there), then the least loaded; a
    // pod already draining (a previous leader's choice) before others.
    const EngineObservation* victim = nullptr;
    auto key = [](const EngineObservation& e) {
      const double load = e.metrics_ok ? e.running + e.waiting : 1e18;
      return std::make_tuple(e.phase == Phase::kReady, !e.draining, load,
                             e.in_flight < 0 ? int64_t{1} << 60 : e.in_flight);
    };
    for (const EngineObservation& e : obs.engines) {
      if (e.phase == Phase::kTerminating) continue;
      if (!victim || key(e) < key(*victim) || (key(e) == key(*victim) && e.pod > victim->pod)) {
        victim = &e;
      }
    }
    if (!victim) return;  // no pod at all for a positive count: the ReplicaSet is behind
    drain_ = Drain{victim->pod, now, obs.replicas, victim->phase == Phase::kReady};
    // The stray-drain pass above may have listed it for undrain (a previous leader's drain).
    std::erase(d.undrain, victim->pod);
  }

  // The drain in progress.
  const EngineObservation* e = nullptr;
  for (const EngineObservation& x : obs.engines) {
    if (x.pod == drain_->pod) e = &x;
  }
  if (!e || e->phase == Phase::kTerminating) {
    // Removed by someone else meanwhile: decide again on the next tick.
    drain_.reset();
    d.reason = "DrainCancelled";
    d.message = "the replica being drained went away";
    return;
  }
  const bool empty = !drain_->was_ready || (e->draining && e->in_flight == 0 &&
                                            now - drain_->since >= config_.drain_settle);
  const bool timed_out = now - drain_->since >= config_.drain_timeout;
  if (empty || timed_out) {
    d.replicas = drain_->from_replicas - 1;
    d.remove_pod = drain_->pod;
    last_replicas_ = d.replicas;
    d.drain.push_back(drain_->pod);  // keep it unready until it is gone
    d.reason = timed_out && !empty ? "DrainTimeout" : d.replicas == 0 ? "ScaleToZero" : "ScaleDown";
    d.message = timed_out && !empty
                    ? fmt::format("{} -> {} replicas: {} {} after {}", obs.replicas, d.replicas,
                                  drain_->pod,
                                  e->draining ? fmt::format("still had {} requests", e->in_flight)
                                              : std::string("never confirmed its drain"),
                                  Seconds(config_.drain_timeout))
                : idle ? fmt::format("{} -> {} replicas: idle for {}; {} drained", obs.replicas,
                                     d.replicas, Seconds(*config_.scale_to_zero_after), drain_->pod)
                       : fmt::format("{} -> {} replicas: {} drained", obs.replicas, d.replicas,
                                     drain_->pod);
    drain_.reset();
    return;
  }
  d.drain.push_back(drain_->pod);
  d.reason = "Draining";
  d.message = fmt::format("draining {} ({} requests in flight) to go from {} to {} replicas",
                          drain_->pod, e->in_flight, obs.replicas, obs.replicas - 1);
}

Json Autoscaler::SaveState() const {
  Json samples = Json::array();
  for (const Sample& s : samples_) {
    samples.push_back(Json::array({ToMillis(s.t), s.concurrency, s.waiting, s.kv, s.stable_ratio}));
  }
  Json j = {{"version", 1},
            {"windowStart", ToMillis(window_start_)},
            {"lastActive", ToMillis(last_active_)},
            {"panicking", panicking_},
            {"panicLastOver", ToMillis(panic_last_over_)},
            {"panicPeak", panic_peak_},
            {"lastUnready", ToMillis(last_unready_)},
            {"frozen", frozen_},
            {"samples", std::move(samples)}};
  if (last_replicas_) j["lastReplicas"] = *last_replicas_;
  if (drain_) {
    j["drain"] = {{"pod", drain_->pod},
                  {"since", ToMillis(drain_->since)},
                  {"fromReplicas", drain_->from_replicas},
                  {"wasReady", drain_->was_ready}};
  }
  return j;
}

Result<Autoscaler> Autoscaler::Restore(AutoscalerConfig config, const Json& state,
                                       AutoscalerTime now, std::string_view source) {
  auto err = [&](std::string_view what) {
    return DataLossError("{}: autoscaler state: {}", source, what);
  };
  if (!state.is_object()) return err("not a JSON object");
  const std::string src = fmt::format("{}: autoscaler state", source);
  KINFER_ASSIGN_OR_RETURN(int64_t version, JsonInt(state, "version", src));
  if (version != 1) return err(fmt::format("version {} is not 1", version));
  Autoscaler a(std::move(config), now);
  KINFER_ASSIGN_OR_RETURN(int64_t window_start, JsonInt(state, "windowStart", src));
  KINFER_ASSIGN_OR_RETURN(int64_t last_active, JsonInt(state, "lastActive", src));
  KINFER_ASSIGN_OR_RETURN(bool panicking, JsonBool(state, "panicking", false, src));
  KINFER_ASSIGN_OR_RETURN(int64_t panic_last_over, JsonInt(state, "panicLastOver", 0, src));
  KINFER_ASSIGN_OR_RETURN(int64_t panic_peak, JsonInt(state, "panicPeak", 0, src));
  KINFER_ASSIGN_OR_RETURN(int64_t last_unready, JsonInt(state, "lastUnready", 0, src));
  KINFER_ASSIGN_OR_RETURN(bool frozen, JsonBool(state, "frozen", false, src));
  KINFER_ASSIGN_OR_RETURN(std::optional<int64_t> last_replicas,
                          JsonOptInt(state, "lastReplicas", src));
  if (panic_peak < 0 || panic_peak > 1000000) return err("panicPeak out of range");
  if (last_replicas && (*last_replicas < 0 || *last_replicas > 1000000)) {
    return err("lastReplicas out of range");
  }
  const Json* samples = state.contains("samples") ? &state["samples"] : nullptr;
  if (!samples || !samples->is_array()) return err("samples: expected an array");
  std::deque<Sample> restored;
  for (const Json& s : *samples) {
    if (!s.is_array() || s.size() != 5 || !s[0].is_number_integer()) {
      return err("samples: each is [unixMillis, concurrency, waiting, kv, stableRatio]");
    }
    Sample x{FromMillis(s[0].get<int64_t>()), 0, 0, 0, 0};
    double* fields[] = {&x.concurrency, &x.waiting, &x.kv, &x.stable_ratio};
    for (size_t i = 0; i < 4; ++i) {
      if (!s[i + 1].is_number() || !std::isfinite(s[i + 1].get<double>()) ||
          s[i + 1].get<double>() < 0) {
        return err("samples: values must be finite numbers >= 0");
      }
      *fields[i] = s[i + 1].get<double>();
    }
    if (!restored.empty() && x.t < restored.back().t) return err("samples: not in time order");
    restored.push_back(x);
  }
  if (last_replicas) a.last_replicas_ = static_cast<int32_t>(*last_replicas);
  // Stale (the last sample older than the stable window), or a future clock: what the windows
  // say no longer describes the load. The last known replica count still tells an outside
  // change from ours.
  const bool fresh = !restored.empty() && restored.back().t > now - a.config_.stable_window &&
                     restored.back().t <= now + std::chrono::seconds(5);
  if (!fresh || frozen) return a;
  a.samples_ = std::move(restored);
  a.window_start_ = FromMillis(window_start);
  a.last_active_ = std::min(FromMillis(last_active), now);
  a.panicking_ = panicking;
  a.panic_last_over_ = FromMillis(panic_last_over);
  a.panic_peak_ = static_cast<int32_t>(panic_peak);
  a.last_unready_ = FromMillis(last_unready);
  if (state.contains("drain") && !state["drain"].is_null()) {
    const Json& dr = state["drain"];
    if (!dr.is_object()) return err("drain: expected an object");
    KINFER_ASSIGN_OR_RETURN(std::string pod, JsonString(dr, "pod", src + ".drain"));
    KINFER_ASSIGN_OR_RETURN(int64_t since, JsonInt(dr, "since", src + ".drain"));
    KINFER_ASSIGN_OR_RETURN(int64_t from, JsonInt(dr, "fromReplicas", src + ".drain"));
    KINFER_ASSIGN_OR_RETURN(bool was_ready, JsonBool(dr, "wasReady", true, src + ".drain"));
    if (pod.empty() || from < 1 || from > 1000000) return err("drain: bad pod or fromReplicas");
    a.drain_ = Drain{pod, FromMillis(since), static_cast<int32_t>(from), was_ready};
  }
  a.Trim(now);
  return a;
}

}  // namespace kinfer::op
