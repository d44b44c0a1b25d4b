#include "operator/autoscale_sim.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <numbers>
#include <optional>
#include <random>

#include <fmt/format.h>

namespace kinfer::op {
namespace {

using Phase = EngineObservation::Phase;

struct Req {
  double arrival = 0, service = 0, start = -1, end = 0;
};

struct Pod {
  std::string name;
  double ready_at = 0;
  bool terminating = false;
  double terminate_deadline = 0;
  bool draining = false;
  double drain_until = 0;
  bool remove_first = false;  // the deletion-cost mark
  std::vector<Req> running;
  std::deque<Req> queue;

  bool ready(double t) const { return t >= ready_at; }
  bool routable(double t) const { return ready(t) && !terminating && !draining; }
  size_t load() const { return running.size() + queue.size(); }
};

AutoscalerTime At(double t) {
  // An arbitrary fixed epoch: the state's wall-clock times stay plausible.
  return AutoscalerTime(std::chrono::seconds(1'800'000'000)) +
         std::chrono::duration_cast<AutoscalerTime::duration>(std::chrono::duration<double>(t));
}

}  // namespace

AutoscalerConfig SimOptions::DefaultConfig() {
  AutoscalerConfig c;
  c.min_replicas = 0;
  c.max_replicas = 8;
  c.target_concurrency = 6;  // 75% of 8 slots
  c.target_waiting = 2;
  c.target_kv_usage = 0.8;
  c.scale_to_zero_after = std::chrono::minutes(5);
  return c;
}

SimLoad StepLoad() {
  return {"step", 2400, [](double t) {
            if (t < 300) return 0.5;
            if (t < 900) return 8.0;
            if (t < 1500) return 0.5;
            if (t < 2100) return 0.0;
            return 1.0;
          }};
}

SimLoad BurstLoad() {
  return {"burst", 2400, [](double t) {
            if (t >= 1800) return 0.0;
            const double in_period = std::fmod(t, 300.0);
            return in_period >= 120 && in_period < 150 ? 12.0 : 1.0;
          }};
}

SimLoad SawtoothLoad() {
  return {"sawtooth", 2400, [](double t) {
            if (t >= 1920) return 0.0;
            return 10.0 * std::fmod(t, 480.0) / 480.0;
          }};
}

SimLoad DiurnalLoad() {
  return {"diurnal", 7200, [](double t) {
            const double hour = t / 7200.0 * 24.0;
            if (hour < 6 || hour > 20) return 0.0;
            return 9.0 * std::sin(std::numbers::pi * (hour - 6) / 14.0);
          }};
}

std::vector<SimLoad> AllLoads() { return {StepLoad(), BurstLoad(), SawtoothLoad(), DiurnalLoad()}; }

int SimResult::flaps(double within_s, double margin) const {
  int n = 0;
  for (size_t i = 0; i + 1 < scale_events.size(); ++i) {
    const SimScaleEvent& a = scale_events[i];
    const SimScaleEvent& b = scale_events[i + 1];
    if (a.to < a.from && b.to > b.from && b.t - a.t < within_s && b.rate <= a.rate * (1 + margin)) {
      ++n;
    }
  }
  return n;
}

double SimResult::time_to_ready(double t0, int32_t replicas) const {
  for (const SimPoint& p : series) {
    if (p.t >= t0 && p.ready >= replicas) return p.t - t0;
  }
  return -1;
}

double SimResult::wait_quantile(double q) const {
  if (waits_s.empty()) return 0;
  std::vector<double> w = waits_s;
  std::sort(w.begin(), w.end());
  const size_t i = std::min(w.size() - 1, static_cast<size_t>(q * static_cast<double>(w.size())));
  return w[i];
}

SimResult RunSimulation(const SimOptions& o, const SimLoad& load) {
  SimResult r;
  r.load = load.name;
  std::mt19937_64 rng(o.seed);
  std::exponential_distribution<double> service(1.0 / o.service_mean_s);

  std::vector<std::unique_ptr<Pod>> pods;
  int64_t pod_seq = 0;
  auto new_pod = [&](double t, bool ready_now) {
    auto p = std::make_unique<Pod>();
    p->name = fmt::format("engine-{:05d}", pod_seq++);
    p->ready_at = ready_now ? t : t + o.cold_start_s;
    pods.push_back(std::move(p));
  };
  int32_t spec = o.initial_replicas;
  for (int32_t i = 0; i < spec; ++i) new_pod(0, true);

  std::deque<Req> held;
  std::optional<double> activation_at;
  Autoscaler autoscaler(o.autoscaler, At(0));
  double next_scrape = o.scrape_interval_s;
  std::vector<std::string> pretend_drained;  // the no-drain baseline's answers

  auto start = [&](Pod& p, Req q, double t) {
    q.start = t;
    q.end = t + q.service;
    p.running.push_back(q);
  };
  auto dispatch = [&](Req q, double t) {
    Pod* best = nullptr;
    for (auto& p : pods) {
      if (p->routable(t) && (!best || p->load() < best->load())) best = p.get();
    }
    if (!best) {
      if (static_cast<int>(held.size()) >= o.max_held) {
        ++r.dropped_queue_full;
        return;
      }
      held.push_back(q);
      return;
    }
    if (static_cast<int>(best->running.size()) < o.slots) {
      start(*best, q, t);
    } else {
      best->queue.push_back(q);
    }
  };
  auto scale_to = [&](double t, int32_t to, const std::string& reason) {
    r.scale_events.push_back({t, spec, to, load.rate(t), reason});
    spec = to;
    r.max_spec = std::max(r.max_spec, spec);
  };

  const int64_t steps = static_cast<int64_t>(std::ceil(load.duration_s / o.dt_s));
  for (int64_t step = 0; step <= steps; ++step) {
    const double t = static_cast<double>(step) * o.dt_s;

    // Replicas: finish, start queued work, end drains whose lease ran out, go away.
    for (auto& p : pods) {
      for (size_t i = 0; i < p->running.size();) {
        if (p->running[i].end <= t) {
          r.waits_s.push_back(p->running[i].start - p->running[i].arrival);
          ++r.completed;
          p->running[i] = p->running.back();
          p->running.pop_back();
        } else {
          ++i;
        }
      }
      while (static_cast<int>(p->running.size()) < o.slots && !p->queue.empty()) {
        start(*p, p->queue.front(), t);
        p->queue.pop_front();
      }
      if (p->draining && t >= p->drain_until) p->draining = false;
    }
    std::erase_if(pods, [&](const std::unique_ptr<Pod>& p) {
      if (!p->terminating) return false;
      if (p->load() == 0) return true;
      if (t < p->terminate_deadline) return false;
      r.cut += static_cast<int64_t>(p->load());
      return true;
    });

    // The ReplicaSet: create what is missing, delete the surplus (not ready first, then the
    // pod marked with the lowest deletion cost, then the newest).
    int32_t live = 0;
    for (auto& p : pods) live += !p->terminating;
    while (live < spec) {
      new_pod(t, false);
      ++live;
    }
    while (live > spec) {
      Pod* victim = nullptr;
      auto rank = [&](const Pod& p) {
        return std::make_tuple(p.ready(t), o.drain ? !p.remove_first : true);
      };
      for (auto& p : pods) {
        if (p->terminating) continue;
        if (!victim || rank(*p) < rank(*victim) ||
            (rank(*p) == rank(*victim) && p->name > victim->name)) {
          victim = p.get();
        }
      }
      victim->terminating = true;
      victim->terminate_deadline = t + o.shutdown_timeout_s;
      --live;
    }

    // Clients.
    std::poisson_distribution<int> arrivals(std::max(0.0, load.rate(t)) * o.dt_s);
    const int n = load.rate(t) > 0 ? arrivals(rng) : 0;
    for (int i = 0; i < n; ++i) {
      Req q;
      q.arrival = t;
      q.service = std::min(service(rng), 8 * o.service_mean_s);
      ++r.arrived;
      dispatch(q, t);
    }

    // The router's hold queue: release, expire, and bring the service up from zero.
    bool routable = false;
    for (auto& p : pods) routable = routable || p->routable(t);
    if (routable && !held.empty()) {
      std::deque<Req> go;
      go.swap(held);
      for (Req& q : go) dispatch(q, t);
    }
    while (!held.empty() && held.front().arrival + o.hold_timeout_s <= t) {
      held.pop_front();
      ++r.dropped_hold_timeout;
    }
    if (!held.empty() && !routable && spec == 0 && !activation_at) {
      activation_at = t + o.activation_delay_s;
    }
    if (activation_at && t >= *activation_at) {
      // JSON Patch: test /spec/replicas == 0, then replace with 1.
      if (spec == 0) scale_to(t, 1, "RouterActivation");
      activation_at.reset();
    }

    // The autoscaler, every scrape interval, on what a scrape would read now.
    if (t + 1e-9 >= next_scrape) {
      next_scrape += o.scrape_interval_s;
      AutoscalerObservation obs;
      obs.replicas = spec;
      double in_flight = static_cast<double>(held.size());
      for (auto& p : pods) in_flight += static_cast<double>(p->load());
      obs.routers.push_back({"router-0", true, in_flight, static_cast<double>(held.size())});
      for (auto& p : pods) {
        EngineObservation e;
        e.pod = p->name;
        e.phase = p->terminating ? Phase::kTerminating
                  : p->ready(t)  ? Phase::kReady
                                 : Phase::kStarting;
        e.metrics_ok = p->ready(t);
        e.running = static_cast<double>(p->running.size());
        e.waiting = static_cast<double>(p->queue.size());
        e.kv_usage = std::min(1.0, e.running * o.kv_per_request);
        if (o.drain) {
          e.draining = p->draining;
          e.in_flight = static_cast<int64_t>(p->load());
        } else {
          e.draining = std::find(pretend_drained.begin(), pretend_drained.end(), p->name) !=
                       pretend_drained.end();
          e.in_flight = 0;
        }
        obs.engines.push_back(std::move(e));
      }
      AutoscalerDecision d = autoscaler.Step(obs, At(t));
      for (const std::string& name : d.undrain) {
        for (auto& p : pods) {
          if (p->name == name) p->draining = false;
        }
        std::erase(pretend_drained, name);
      }
      for (const std::string& name : d.drain) {
        for (auto& p : pods) {
          if (p->name != name) continue;
          if (o.drain) {
            p->draining = true;
            p->drain_until = t + o.drain_lease_s;
          } else if (std::find(pretend_drained.begin(), pretend_drained.end(), name) ==
                     pretend_drained.end()) {
            pretend_drained.push_back(name);
          }
        }
      }
      if (d.replicas != spec) {
        for (auto& p : pods) {
          if (!d.remove_pod.empty() && p->name == d.remove_pod) p->remove_first = true;
        }
        scale_to(t, d.replicas, d.reason);
      }
      SimPoint pt{t,
                  spec,
                  0,
                  0,
                  0,
                  load.rate(t),
                  in_flight,
                  static_cast<double>(held.size()),
                  std::string(AutoscalerModeName(d.mode)),
                  d.reason};
      for (auto& p : pods) {
        if (p->terminating) {
          ++pt.terminating;
        } else if (p->ready(t)) {
          ++pt.ready;
        } else {
          ++pt.starting;
        }
      }
      r.series.push_back(std::move(pt));
    }
  }
  // Whatever is still held or running at the end is neither dropped nor done: the run stops.
  return r;
}

}  // namespace kinfer::op
