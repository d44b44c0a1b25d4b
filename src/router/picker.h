// The routing policies: which of the routable replicas gets a request. Pure functions of what
// the pool knows about each candidate (its in-flight count, its scraped load, how much of the
// prompt's prefix it probably caches), so they are tested without sockets.
//
//   auto picker = Picker::Create(Policy::kPrefix, {});
//   size_t i = picker->Pick(candidates, request);  // an index into candidates
//
// A picker is not thread-safe (it keeps a counter and a random generator): the pool calls it
// under its lock, and counts the pick in the chosen replica's in-flight at once, so a burst
// does not pile onto the replica that looked idlest before the burst began.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string_view>

#include "core/status.h"

namespace kinfer::router {

enum class Policy { kRoundRobin, kLeastRequest, kSession, kPrefix };

// "round_robin", "least_request", "session", "prefix".
Result<Policy> ParsePolicy(std::string_view name);
std::string_view PolicyName(Policy p);

// One routable replica as the pickers see it.
struct Candidate {
  uint64_t id = 0;            // stable identity (a hash of the replica's address): session affinity
  int32_t inflight = 0;       // this router's requests to it, live
  double waiting = 0;         // scraped num_requests_waiting (every router's, and direct clients')
  double running = 0;         // scraped num_requests_running
  double kv_usage = 0;        // scraped, 0..1
  bool fresh = true;          // scraped recently; stale metrics count as saturated
  size_t matched_blocks = 0;  // leading prompt blocks its prefix index holds
  double index_fill = 0;      // its prefix index's size over its capacity, 0..1
  bool adapter_loaded = false;  // the request's LoRA adapter is in use there (loaded)
};

struct PickRequest {
  size_t prompt_blocks = 0;         // full blocks of the prompt that were hashed
  std::optional<uint64_t> session;  // hash of the session key, when there is one
};

struct PickerOptions {
  // prefix: score = prefix_weight * matched fraction - load_weight * load / (max load + 1)
  //                 - kv_weight * KV usage - fill_weight * index fill.
  // The last term spreads prompts no replica has seen to the replica whose cache holds the
  // least (llm-d's "no-hit LRU" idea), rather than to random ones.
  double prefix_weight = 2.0;
  double load_weight = 1.0;
  double kv_weight = 0.5;
  double fill_weight = 0.1;
  // prefix: added where the request's LoRA adapter is already loaded (vLLM's
  // lora_requests_info), so requests for an adapter gather where it is instead of loading it
  // on every replica.
  double adapter_weight = 1.0;
  // prefix: a replica whose load exceeds hot_factor times the mean (both plus one) loses its
  // prefix bonus, so one hot prefix spreads instead of saturating the replica that has it.
  double hot_factor = 1.5;
  // session: a replica takes at most (1 + epsilon) * (total load + 1) / n (bounded load).
  double session_epsilon = 0.25;
  uint64_t seed = 0;  // 0: from std::random_device
};

class Picker {
 public:
  static std::unique_ptr<Picker> Create(Policy policy, const PickerOptions& options = {});
  virtual ~Picker() = default;
  virtual Policy policy() const = 0;
  // The index in `candidates` (not empty) of the replica to send the request to.
  virtual size_t Pick(std::span<const Candidate> candidates, const PickRequest& request) = 0;

  // The load the pickers compare: this router's in-flight, or the replica's own count when that
  // is higher (other routers' requests); stale metrics weigh as a saturated replica.
  static double Load(const Candidate& c);
};

}  // namespace kinfer::router
