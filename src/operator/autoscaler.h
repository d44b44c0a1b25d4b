// The autoscaler's decision core for one LLMService: from what the routers and engines report
// to the number of replicas it should have, Knative-KPA style, with no I/O and no clock of its
// own (the caller passes `now`), so tests and the simulation (autoscale_sim.h) drive it with a
// fast-forwarded clock and a new leader resumes it from the state the last one saved.
//
//   Autoscaler a(config, now);                         // or Autoscaler::Restore(config, saved,
//   now) every 1-2 s:
//     AutoscalerDecision d = a.Step(observation, now); // observation: scraped, see below
//     drain d.drain (renew), undrain d.undrain, then if d.replicas != observation.replicas:
//     mark d.remove_pod as the first to delete and write /scale = d.replicas
//     every few seconds: save a.SaveState() where the next leader finds it
//
// The rules, in the order Step applies them:
//  - Signals per tick: concurrency = requests in flight at the routers (held ones included), or
//    the engines' running + waiting when there is no router; waiting = the engines'
//    num_requests_waiting + the routers' held requests; KV = the engines' kv_cache_usage_perc.
//    Each over its target per replica gives a replica count; the largest wins.
//  - Two windows of those samples: stable (60 s) and panic (6 s). When the panic window asks for
//    panic_threshold x the current replicas or more, the autoscaler panics: it scales to the
//    panic window's count (never down) until the panic window has stayed under the threshold
//    for a whole stable window. Otherwise it scales up to the stable window's count once that
//    is more than `tolerance` above the current replicas. No panic while no replica is ready
//    and for a stable window after one is: what piled up during a cold start is its length,
//    not load (the stable window still counts it).
//  - Scale-up per decision is bounded: at most max_scale_up_rate x the current replicas (at
//    least +1). Replicas still starting count as capacity: decisions compare with spec.replicas,
//    not with the ready count, so a slow start does not trigger another scale-up.
//  - Scale-down never while panicking, only after the recommendation has stayed below the
//    current count for the whole scale_down_delay (the highest recommendation in that window
//    wins), one replica at a time: the replica to go (not ready first, then the least loaded)
//    is drained (the caller makes it unready so routers stop sending to it), and it is removed
//    only once its in-flight requests are done (or after drain_timeout). Load coming back
//    cancels the drain.
//  - Scale to zero (min_replicas 0): after scale_to_zero_after with no request in flight,
//    held or running anywhere, the replicas go one by one (each drained) to zero. The routers
//    bring it back to 1 themselves when a request arrives (a JSON Patch that tests for 0); a
//    change of spec.replicas by anyone else counts as activity.
//  - Frozen when metrics are missing (a router or a ready engine not scraped, no router at all
//    while the router is on): no decision, no sample, a drain in progress is given back; once
//    metrics return, the windows and the idle timer start over (what happened meanwhile is
//    unknown).
//  - Stands down when a HorizontalPodAutoscaler targets the LLMService (one writer of /scale).
//
// Not thread-safe: one owner (the leader's autoscaling loop) calls it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace kinfer::op {

// Wall-clock time: the state crosses processes (a leader change), so steady clocks won't do.
using AutoscalerTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

struct AutoscalerConfig {
  int32_t min_replicas = 1;
  int32_t max_replicas = 4;
  // Targets per replica; 0 turns a signal off (at least one must be on).
  double target_concurrency = 8;  // requests in flight (or held) at the routers
  double target_waiting = 2;      // num_requests_waiting (+ held at the routers)
  double target_kv_usage = 0.8;   // kv_cache_usage_perc, 0..1
  Millis stable_window{60000};
  Millis panic_window{6000};
  double panic_threshold = 2.0;    // panic when the panic window asks for this x the replicas
  double max_scale_up_rate = 2.0;  // per decision
  Millis scale_down_delay{60000};  // stabilization before each step down
  // Idle time before scaling to zero; only with min_replicas 0 (which requires it).
  std::optional<Millis> scale_to_zero_after;
  double tolerance = 0.1;
  // After a drain starts, the routers' time to stop sending (their /ready probe period) before
  // "nothing in flight" means done.
  Millis drain_settle{2000};
  // A drain that has not finished by then removes the replica anyway (it still gets its
  // SIGTERM drain, the engine's shutdown timeout).
  Millis drain_timeout{30000};

  // Names the first wrong field ("autoscaling.panicWindow: ...").
  Status Validate() const;
};

// One engine pod as the caller saw it this tick.
struct EngineObservation {
  enum class Phase {
    kStarting,     // exists, not ready yet (scheduling, pulling, loading the model)
    kReady,        // ready: takes requests (or did until a drain)
    kTerminating,  // being deleted: no longer capacity
  };
  std::string pod;
  Phase phase = Phase::kStarting;
  bool metrics_ok = false;  // /metrics scraped this tick (required of ready engines)
  double waiting = 0, running = 0, kv_usage = 0;
  bool draining = false;  // its pod carries kinfer.dev/serving=false (autoscale_observe.h)
  // Requests still in flight for it (its engine's running + waiting and what the routers still
  // stream from it) once no router routes to it; -1 while unknown or still routable.
  int64_t in_flight = -1;
};

// One ready router pod.
struct RouterObservation {
  std::string pod;
  bool metrics_ok = false;
  double in_flight = 0;  // kinfer_router_inflight: being served or held
  double held = 0;       // kinfer_router_held
};

struct AutoscalerObservation {
  int32_t replicas = 0;  // the LLMService's spec.replicas now (its /scale)
  bool router_enabled = true;
  std::vector<RouterObservation> routers;
  std::vector<EngineObservation> engines;
  std::string hpa;  // an HorizontalPodAutoscaler targeting the LLMService ("" when none)
};

enum class AutoscalerMode {
  kStable,
  kPanic,
  kFrozen,     // metrics missing: nothing changes
  kStandDown,  // an HPA owns /scale
};
std::string_view AutoscalerModeName(AutoscalerMode m);

struct AutoscalerDecision {
  int32_t replicas = 0;    // spec.replicas to write; equal to the observation's: no write
  std::string remove_pod;  // when scaling down: the pod to delete first ("" when none is due)
  std::vector<std::string> drain;    // start, or renew, the drain of these pods
  std::vector<std::string> undrain;  // give these back (a cancelled drain)
  AutoscalerMode mode = AutoscalerMode::kStable;
  // For the Autoscaling condition and Events: a CamelCase reason and a sentence.
  std::string reason;
  std::string message;
  // What it saw (for metrics and the simulation's plots).
  double concurrency = 0, waiting = 0, kv_usage = 0;  // this tick's sums
  double stable_ratio = 0, panic_ratio = 0;           // replicas asked for, before rounding
  int32_t recommendation = 0;                         // before the step bounds
};

class Autoscaler {
 public:
  // A fresh autoscaler: empty windows; no scale-down before one scale_down_delay of samples.
  Autoscaler(AutoscalerConfig config, AutoscalerTime now);

  // Resumes from SaveState()'s JSON. A state from another config is fine (windows are trimmed
  // to it); one older than the stable window is stale and gives a fresh autoscaler, as does
  // a gap in it longer than that (treated as a freeze). `source` names where it came from in
  // errors ("configmap kinfer/kinfer-autoscaler-llm-qwen: state").
  static Result<Autoscaler> Restore(AutoscalerConfig config, const Json& state, AutoscalerTime now,
                                    std::string_view source);

  AutoscalerDecision Step(const AutoscalerObservation& obs, AutoscalerTime now);

  // The windows and timers, compact enough for a ConfigMap (a few KB).
  Json SaveState() const;

  // A new config (the LLMService was edited); the state is kept.
  void SetConfig(AutoscalerConfig config) { config_ = std::move(config); }
  const AutoscalerConfig& config() const { return config_; }

  bool panicking() const { return panicking_; }
  // The pod being drained to go ("" when none).
  const std::string& draining_pod() const { return drain_ ? drain_->pod : empty_; }

 private:
  struct Sample {
    AutoscalerTime t;
    double concurrency, waiting, kv;
    double stable_ratio;  // the stable window's replica count at this sample
  };
  struct Drain {
    std::string pod;
    AutoscalerTime since;
    int32_t from_replicas;
    bool was_ready;  // a replica that never took requests needs no waiting
  };

  double Ratio(double concurrency, double waiting, double kv) const;
  // Average of the samples newer than now - window.
  double WindowRatio(AutoscalerTime now, Millis window) const;
  void Trim(AutoscalerTime now);
  // Forgets the windows and counts `now` as activity (after a freeze or a stale state).
  void StartOver(AutoscalerTime now);
  void CancelDrain(AutoscalerDecision& d);
  // Continues a drain in progress, or starts one; fills `d` with the step down when it is done.
  void StepDown(const AutoscalerObservation& obs, AutoscalerTime now, AutoscalerDecision& d);
  static std::optional<std::string> MissingMetrics(const AutoscalerObservation& obs);

  AutoscalerConfig config_;
  std::deque<Sample> samples_;
  std::optional<int32_t> last_replicas_;  // what spec.replicas was (or was set to) last step
  AutoscalerTime window_start_;           // samples before this do not justify a scale-down
  AutoscalerTime last_active_;            // last request seen (or replicas changed by others)
  bool panicking_ = false;
  AutoscalerTime panic_last_over_{};
  int32_t panic_peak_ = 0;
  AutoscalerTime last_unready_{};  // last time no replica was ready (a cold start's backlog)
  bool frozen_ = false;
  std::optional<Drain> drain_;
  std::string empty_;
};

}  // namespace kinfer::op
