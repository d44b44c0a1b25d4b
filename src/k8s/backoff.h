// Exponential backoff with jitter, for reconnecting watches and retrying failed work: each wait
// is the previous one times `factor`, capped, then stretched by a random fraction up to `jitter`
// so that many clients that failed together do not come back together.
//
//   Backoff b({.initial = 800ms, .max = 30s});
//   while (!Connect()) std::this_thread::sleep_for(b.Next());
//   b.Reset();  // after a success
#pragma once

#include <chrono>
#include <mutex>
#include <random>

namespace kinfer::k8s {

struct BackoffOptions {
  std::chrono::milliseconds initial{800};
  std::chrono::milliseconds max{30000};
  double factor = 2.0;
  double jitter = 1.0;  // each wait is d * (1 + U[0, jitter]), still capped at max
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {});
  // The next wait; grows until Reset().
  std::chrono::milliseconds Next();
  void Reset();
  // The wait the next Next() would grow from (without jitter).
  std::chrono::milliseconds current() const { return current_; }

 private:
  BackoffOptions options_;
  std::chrono::milliseconds current_{0};
  std::mt19937_64 rng_;
};

// A uniformly random duration in [lo, hi).
std::chrono::milliseconds RandomBetween(std::chrono::milliseconds lo, std::chrono::milliseconds hi);

}  // namespace kinfer::k8s
