// Whether a replica may take requests: its active /ready probes, what discovery says (ready,
// terminating), and passive ejection (outlier detection) on the failures real requests see.
//
// Passive ejection: a connect error or a reset before any response byte ejects at once (the
// replica is gone or dying); 5xx answers eject after `consecutive_5xx` in a row. An ejection
// lasts base_ejection * 2^(ejections so far), capped, and ends only once a probe has passed
// after the ejection began, so a dead replica stays out however long it takes. The pool never
// ejects more than max_ejected_fraction of its replicas: the rest keep serving (and fail fast
// through retries) rather than leaving no one to send to.
//
// Not thread-safe: the pool guards it. Time is passed in, so tests run on a fake clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace kinfer::router {

using Clock = std::chrono::steady_clock;

struct HealthOptions {
  Clock::duration base_ejection = std::chrono::seconds(1);
  Clock::duration max_ejection = std::chrono::seconds(30);
  int consecutive_5xx = 3;
  double max_ejected_fraction = 0.5;
};

// What a request saw at one replica.
enum class Outcome {
  kSuccess,       // a response other than 5xx (4xx is the client's fault, 429 is load)
  kConnectError,  // refused, unreachable, connect timeout
  kReset,         // reset or closed before the response head
  kServerError,   // a 5xx response head
};

class ReplicaHealth {
 public:
  // From the active probe: /ready answered 200 (true) or anything else (false).
  void OnProbe(bool ready, Clock::time_point now);
  // From discovery (EndpointSlice conditions); a static backend is always ready there.
  void SetDiscovered(bool ready, bool terminating) {
    discovered_ready_ = ready;
    terminating_ = terminating;
  }
  // Passive: what a request saw. `ejected_in_pool` and `pool_size` enforce the ejection bound.
  // Returns true when this outcome ejected the replica.
  bool OnOutcome(Outcome outcome, Clock::time_point now, int ejected_in_pool, int pool_size);

  // May take new requests now.
  bool Routable(Clock::time_point now) const {
    return probe_ready_ && discovered_ready_ && !terminating_ && !Ejected(now);
  }
  bool Ejected(Clock::time_point now) const;
  bool probe_ready() const { return probe_ready_; }
  bool terminating() const { return terminating_; }
  int ejections() const { return ejections_; }
  Clock::time_point ejected_until() const { return ejected_until_; }

  HealthOptions options;

 private:
  bool probe_ready_ = false;  // no request goes out before a first probe passes
  bool discovered_ready_ = true;
  bool terminating_ = false;
  bool ejected_ = false;
  Clock::time_point ejected_at_{}, ejected_until_{};
  Clock::time_point last_probe_ok_{};
  int ejections_ = 0;  // in a row; a success after return resets the backoff
  int consecutive_5xx_ = 0;
};

}  // namespace kinfer::router
