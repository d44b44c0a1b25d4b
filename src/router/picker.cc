#include "router/picker.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kinfer::router {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class PickerBase : public Picker {
 public:
  explicit PickerBase(const PickerOptions& o)
      : options_(o), rng_(o.seed != 0 ? o.seed : std::random_device{}()) {}

 protected:
  // Indices of the candidates with fresh metrics, or of all when none has: a replica whose
  // metrics are stale counts as saturated, picked only when nothing better is left.
  const std::vector<size_t>& Preferred(std::span<const Candidate> c) {
    scratch_.clear();
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i].fresh) scratch_.push_back(i);
    }
    if (scratch_.empty()) {
      for (size_t i = 0; i < c.size(); ++i) scratch_.push_back(i);
    }
    return scratch_;
  }
  size_t Random(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  PickerOptions options_;
  std::mt19937_64 rng_;
  std::vector<size_t> scratch_;
};

class RoundRobin final : public PickerBase {
 public:
  using PickerBase::PickerBase;
  Policy policy() const override { return Policy::kRoundRobin; }
  size_t Pick(std::span<const Candidate> c, const PickRequest&) override {
    return next_++ % c.size();
  }

 private:
  size_t next_ = 0;
};

// Power of two choices: two distinct replicas at random, the less loaded wins.
class LeastRequest final : public PickerBase {
 public:
  using PickerBase::PickerBase;
  Policy policy() const override { return Policy::kLeastRequest; }
  size_t Pick(std::span<const Candidate> c, const PickRequest&) override {
    const std::vector<size_t>& pool = Preferred(c);
    if (pool.size() == 1) return pool[0];
    size_t a = Random(pool.size());
    size_t b = Random(pool.size() - 1);
    if (b >= a) ++b;
    double la = Load(c[pool[a]]), lb = Load(c[pool[b]]);
    if (la == lb) return pool[Random(2) == 0 ? a : b];
    return la < lb ? pool[a] : pool[b];
  }
};

// Rendezvous (highest random weight) hashing on the session key: each key ranks the replicas in
// its own fixed order, and a replica leaving moves only the keys it held. Bounded load: a
// replica above (1 + epsilon) times the mean takes the key's next replica in rank.
class Session final : public PickerBase {
 public:
  using PickerBase::PickerBase;
  Policy policy() const override { return Policy::kSession; }
  size_t Pick(std::span<const Candidate> c, const PickRequest& r) override {
    if (!r.session) return least_.Pick(c, r);
    double total = 0;
    for (const Candidate& x : c) total += x.inflight;
    const double cap =
        std::ceil((1.0 + options_.session_epsilon) * (total + 1) / static_cast<double>(c.size()));
    order_.clear();
    for (size_t i = 0; i < c.size(); ++i) order_.emplace_back(Mix(*r.session ^ Mix(c[i].id)), i);
    std::sort(order_.begin(), order_.end(), std::greater<>());
    for (const auto& [weight, i] : order_) {
      if (c[i].inflight + 1 <= cap) return i;
    }
    return order_.front().second;
  }

 private:
  std::vector<std::pair<uint64_t, size_t>> order_;
  LeastRequest least_{options_};
};

// Prefix- and load-aware: the replica most likely to hold the prompt's prefix, weighed against
// its queue and KV usage. A prompt no replica has seen goes to the least loaded, then the one
// whose cache holds the least, then at random.
class Prefix final : public PickerBase {
 public:
  using PickerBase::PickerBase;
  Policy policy() const override { return Policy::kPrefix; }
  size_t Pick(std::span<const Candidate> c, const PickRequest& r) override {
    const std::vector<size_t>& pool = Preferred(c);
    double max_load = 0, sum_load = 0;
    for (size_t i : pool) {
      const double l = Load(c[i]);
      max_load = std::max(max_load, l);
      sum_load += l;
    }
    const double mean = sum_load / static_cast<double>(pool.size());
    double best = -INFINITY;
    best_.clear();
    for (size_t i : pool) {
      const Candidate& x = c[i];
      const double load = Load(x);
      double hit = r.prompt_blocks == 0
                       ? 0.0
                       : static_cast<double>(std::min(x.matched_blocks, r.prompt_blocks)) /
                             static_cast<double>(r.prompt_blocks);
      // Hot-spot guard: counted as if this request were already there. A hot replica keeps no
      // affinity bonus, so one hot prefix (or adapter) spreads.
      const bool hot = load + 1 > options_.hot_factor * (mean + 1);
      if (hot) hit = 0;
      const double score = options_.prefix_weight * hit -
                           options_.load_weight * load / (max_load + 1) -
                           options_.kv_weight * std::clamp(x.kv_usage, 0.0, 1.0) -
                           options_.fill_weight * std::clamp(x.index_fill, 0.0, 1.0) +
                           (x.adapter_loaded && !hot ? options_.adapter_weight : 0.0);
      if (score > best + 1e-9) {
        best = score;
        best_.clear();
        best_.push_back(i);
      } else if (score > best - 1e-9) {
        best_.push_back(i);
      }
    }
    return best_.size() == 1 ? best_[0] : best_[Random(best_.size())];
  }

 private:
  std::vector<size_t> best_;
};

}  // namespace

Result<Policy> ParsePolicy(std::string_view name) {
  for (Policy p : {Policy::kRoundRobin, Policy::kLeastRequest, Policy::kSession, Policy::kPrefix}) {
    if (PolicyName(p) == name) return p;
  }
  return InvalidArgumentError("--policy {}: expected round_robin, least_request, session or prefix",
                              name);
}

std::string_view PolicyName(Policy p) {
  switch (p) {
    case Policy::kRoundRobin:
      return "round_robin";
    case Policy::kLeastRequest:
      return "least_request";
    case Policy::kSession:
      return "session";
    case Policy::kPrefix:
      return "prefix";
  }
  return "prefix";
}

double Picker::Load(const Candidate& c) {
  const double own = c.inflight;
  if (!c.fresh) return own;
  return std::max(own, c.running + c.waiting);
}

std::unique_ptr<Picker> Picker::Create(Policy policy, const PickerOptions& options) {
  switch (policy) {
    case Policy::kRoundRobin:
      return std::make_unique<RoundRobin>(options);
    case Policy::kLeastRequest:
      return std::make_unique<LeastRequest>(options);
    case Policy::kSession:
      return std::make_unique<Session>(options);
    case Policy::kPrefix:
      return std::make_unique<Prefix>(options);
  }
  return nullptr;
}

}  // namespace kinfer::router
