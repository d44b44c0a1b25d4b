#include "router/health.h"

#include <algorithm>

namespace kinfer::router {

void ReplicaHealth::OnProbe(bool ready, Clock::time_point now) {
  probe_ready_ = ready;
  if (ready) last_probe_ok_ = now;
}

bool ReplicaHealth::Ejected(Clock::time_point now) const {
  if (!ejected_) return false;
  // Back after the ejection time, and only once a probe has passed since it ran out.
  return now < ejected_until_ || last_probe_ok_ < ejected_until_;
}

bool ReplicaHealth::OnOutcome(Outcome outcome, Clock::time_point now, int ejected_in_pool,
                              int pool_size) {
  if (ejected_ && !Ejected(now)) ejected_ = false;  // it came back
  if (outcome == Outcome::kSuccess) {
    consecutive_5xx_ = 0;
    if (!ejected_) ejections_ = 0;
    return false;
  }
  if (ejected_) return false;  // requests sent before the ejection, failing late
  bool eject = outcome != Outcome::kServerError;
  if (outcome == Outcome::kServerError) eject = ++consecutive_5xx_ >= options.consecutive_5xx;
  if (!eject) return false;
  if (static_cast<double>(ejected_in_pool + 1) >
      options.max_ejected_fraction * static_cast<double>(pool_size)) {
    return false;
  }
  Clock::duration d = options.base_ejection;
  for (int i = 0; i < ejections_ && d < options.max_ejection; ++i) d *= 2;
  d = std::min(d, options.max_ejection);
  ejected_ = true;
  ejected_at_ = now;
  ejected_until_ = now + d;
  ejections_++;
  consecutive_5xx_ = 0;
  return true;
}

}  // namespace kinfer::router
