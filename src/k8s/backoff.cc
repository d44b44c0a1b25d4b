#include "k8s/backoff.h"

#include <algorithm>

namespace kinfer::k8s {

Backoff::Backoff(BackoffOptions options) : options_(options), rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::Next() {
  if (current_.count() == 0) {
    current_ = options_.initial;
  } else {
    current_ =
        std::min(options_.max, std::chrono::milliseconds(static_cast<int64_t>(
                                   static_cast<double>(current_.count()) * options_.factor)));
  }
  std::uniform_real_distribution<double> u(0.0, options_.jitter);
  auto d = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(current_.count()) * (1.0 + u(rng_))));
  return std::min(d, options_.max);
}

void Backoff::Reset() { current_ = std::chrono::milliseconds(0); }

std::chrono::milliseconds RandomBetween(std::chrono::milliseconds lo,
                                        std::chrono::milliseconds hi) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  if (hi <= lo) return lo;
  std::uniform_int_distribution<int64_t> u(lo.count(), hi.count() - 1);
  return std::chrono::milliseconds(u(rng));
}

}  // namespace kinfer::k8s
