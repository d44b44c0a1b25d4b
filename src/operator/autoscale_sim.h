// A deterministic simulation of one LLMService under load, with a fast-forwarded clock: clients
// arrive (Poisson, at a rate that follows a load profile), the router holds requests while no
// replica is routable and brings the service up from zero, replicas take `slots` requests at a
// time and queue the rest, pods take `cold_start` to become ready, a ReplicaSet removes the pod
// the autoscaler marked, and a removed pod finishes what it has until its shutdown timeout and
// cuts the rest. The autoscaler (autoscaler.h) is the real one, stepped every scrape interval.
// What comes out: replicas over time, every request's wait, and what was dropped or cut.
//
//   SimResult r = RunSimulation(SimOptions{}, StepLoad());
//   r.dropped() == 0 ...   (tests/unit/operator/autoscale_sim_test.cc; bench/autoscale_sim.py
//                           plots the four profiles)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "operator/autoscaler.h"

namespace kinfer::op {

struct SimLoad {
  std::string name;
  double duration_s = 0;
  std::function<double(double t)> rate;  // requests per second at t seconds
};

// The four profiles of the issue. Every one has an idle stretch long enough to reach zero.
SimLoad StepLoad();      // 0.5 -> 8 -> 0.5 -> 0 -> 1 requests/s
SimLoad BurstLoad();     // 1 request/s with 30 s bursts of 12 every 5 minutes
SimLoad SawtoothLoad();  // ramps 0 -> 10 over 8 minutes, then drops, four times
SimLoad DiurnalLoad();   // a day in two hours: a sine peak of 9 and a night at 0
std::vector<SimLoad> AllLoads();

struct SimOptions {
  AutoscalerConfig autoscaler = DefaultConfig();
  int32_t initial_replicas = 1;
  double dt_s = 0.05;               // simulation step
  double scrape_interval_s = 2;     // the autoscaler's step (1-2 s in the operator)
  double cold_start_s = 20;         // pod created -> ready
  int slots = 8;                    // requests a replica runs at once (max_num_seqs)
  double service_mean_s = 4;        // a request's generation time (exponential, capped at 8x)
  double kv_per_request = 0.1;      // KV cache fraction a running request holds
  int max_held = 1024;              // the router's hold queue: 429 beyond
  double hold_timeout_s = 60;       // then 503
  double activation_delay_s = 0.2;  // a held request -> the router's /scale patch lands
  double drain_lease_s = 30;        // a drain not renewed ends by itself
  double shutdown_timeout_s = 30;   // a removed pod's SIGTERM drain; what remains is cut
  // false: a baseline without the drain protocol (the ReplicaSet removes the newest pod while
  // it serves, as with a plain HPA), to show what the drain saves.
  bool drain = true;
  uint64_t seed = 1;

  // The defaults the simulation runs with: the CRD's, with the targets scaled to `slots`.
  static AutoscalerConfig DefaultConfig();
};

struct SimPoint {
  double t;
  int32_t spec, ready, starting, terminating;
  double rate, in_flight, held;
  std::string mode, reason;
};

struct SimScaleEvent {
  double t;
  int32_t from, to;
  double rate;  // the profile's rate then
  std::string reason;
};

struct SimResult {
  std::string load;
  std::vector<SimPoint> series;  // one per autoscaler step
  std::vector<SimScaleEvent> scale_events;
  int64_t arrived = 0, completed = 0;
  int64_t dropped_hold_timeout = 0;  // 503 after the hold timeout
  int64_t dropped_queue_full = 0;    // 429, hold queue full
  int64_t cut = 0;                   // cut when its replica went away
  std::vector<double> waits_s;       // arrival -> start of generation, per completed request
  int32_t max_spec = 0;

  int64_t dropped() const { return dropped_hold_timeout + dropped_queue_full + cut; }
  // Flapping: a step down followed by a step up within `within_s` although the offered load
  // (the profile's rate) did not rise by more than `margin` meanwhile: the autoscaler undoing
  // its own decision, not following the load.
  int flaps(double within_s, double margin = 0.1) const;
  // Seconds from `t0` until the ready replicas first reach `replicas` (-1: never).
  double time_to_ready(double t0, int32_t replicas) const;
  double wait_quantile(double q) const;
};

SimResult RunSimulation(const SimOptions& options, const SimLoad& load);

}  // namespace kinfer::op
