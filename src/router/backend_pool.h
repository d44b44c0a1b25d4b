// The replicas of one model behind the router, and everything it knows about each: discovery's
// view (ready, terminating), its health (probes, passive ejection), its scraped load, its prefix
// index and this router's in-flight requests to it. The pickers choose among the routable ones.
//
//   BackendPool pool(options);
//   pool.SetEndpoints({{ParseEndpoint("10.0.0.5:8000").value()}});    // discovery
//   auto pick = pool.Pick(info, /*exclude=*/{});   // counted in flight at once
//   ... send the request to pick->backend->endpoint() ...
//   pool.Release(*pick->backend, Outcome::kSuccess);
//
// Thread-safe: one mutex guards every replica's state; a pick is a few microseconds under it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "router/health.h"
#include "router/picker.h"
#include "router/prefix_index.h"
#include "router/replica_metrics.h"
#include "router/request_info.h"
#include "router/upstream.h"

namespace kinfer::router {

// One replica as discovery reports it.
struct DiscoveredEndpoint {
  Endpoint endpoint;
  bool ready = true;         // EndpointSlice conditions.ready (static backends: true)
  bool terminating = false;  // conditions.terminating: finishing its work, takes nothing new
  std::string pod;           // targetRef name, for logs and metrics ("" when unknown)
};

class Backend {
 public:
  Backend(DiscoveredEndpoint d, size_t index_capacity);
  const Endpoint& endpoint() const { return endpoint_; }
  const std::string& name() const { return name_; }  // "host:port"
  uint64_t id() const { return id_; }

 private:
  friend class BackendPool;
  Endpoint endpoint_;
  std::string name_;
  uint64_t id_;
  // Guarded by the pool's mutex.
  std::string pod_;
  ReplicaHealth health_;
  ReplicaLoad load_;
  Clock::time_point load_at_{};  // last successful scrape
  PrefixIndex index_;
  int32_t inflight_ = 0;
  bool removed_ = false;
  bool probing_ = false, scraping_ = false;
};

struct PoolOptions {
  Policy policy = Policy::kPrefix;
  PickerOptions picker;
  HealthOptions health;
  // Scraped metrics older than this count as stale (the replica as saturated).
  Clock::duration metrics_max_age = std::chrono::seconds(1);
  // Prefix index per replica: its reported block count times index_factor, at most
  // index_max_blocks (bounded memory whatever replicas report), index_default_blocks until
  // the replica reports one.
  double index_factor = 1.0;
  size_t index_max_blocks = 1 << 18;
  size_t index_default_blocks = 1 << 14;
  int32_t default_block_size = 16;  // until a replica reports its engine's block size
};

// What /metrics and the logs show of one replica.
struct BackendView {
  std::string name, pod;
  int32_t inflight = 0;
  bool routable = false, probe_ready = false, ejected = false, terminating = false;
  double metrics_age_seconds = -1;  // -1: never scraped
  double waiting = 0, running = 0, kv_usage = 0;
  size_t index_blocks = 0;
  int ejections = 0;
};

class BackendPool {
 public:
  explicit BackendPool(PoolOptions options);

  // Discovery's full list. Replicas already known keep their state (health, index); new ones
  // wait for their first probe; missing ones leave (requests in flight to them finish).
  // Returns the endpoints that left, so their idle connections can be closed.
  std::vector<Endpoint> SetEndpoints(const std::vector<DiscoveredEndpoint>& endpoints);

  struct Pick {
    std::shared_ptr<Backend> backend;
    size_t prompt_blocks = 0;   // blocks of the prompt that were hashed
    size_t matched_blocks = 0;  // of those, in the chosen replica's index
    int routable = 0;           // how many replicas could have taken it
  };
  // Chooses a routable replica not in `exclude` (ids of replicas this request already tried)
  // and counts the request in its in-flight. Without one: nullopt.
  std::optional<Pick> Choose(const RequestInfo& info, const std::vector<uint64_t>& exclude,
                             std::optional<uint64_t> session);
  // The attempt on `b` ended: its in-flight drops, and the outcome feeds passive ejection.
  // Returns true when this outcome ejected the replica.
  bool Release(Backend& b, Outcome outcome);

  // The prober's and scraper's results.
  void OnProbe(Backend& b, bool ready);
  void OnScrape(Backend& b, const std::optional<ReplicaLoad>& load, bool connect_failed);
  // Marks a probe or scrape as running; false when one already is (so they never pile up).
  bool BeginProbe(Backend& b);
  bool BeginScrape(Backend& b);

  std::vector<std::shared_ptr<Backend>> Backends() const;
  std::vector<std::shared_ptr<Backend>> Routable() const;
  std::vector<BackendView> Views() const;
  int routable() const;
  size_t size() const;
  int32_t block_size() const;

  // Called (outside the lock) whenever a replica may have become routable: held requests go.
  void OnRoutable(std::function<void()> fn);

  const PoolOptions& options() const { return options_; }

 private:
  size_t IndexCapacity(const Backend& b) const;
  int EjectedLocked(Clock::time_point now) const;
  void NotifyRoutable();

  PoolOptions options_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Backend>> backends_;
  std::unique_ptr<Picker> picker_;
  int32_t block_size_;
  std::vector<Candidate> candidates_;  // scratch for Choose
  std::vector<Backend*> candidate_backends_;
  std::vector<uint64_t> hashes_;
  std::function<void()> on_routable_;
};

// The chained block hashes (the engine's, engine/block_hash.h) of the full blocks of `tokens`.
std::vector<uint64_t> PrefixHashes(const std::vector<int32_t>& tokens, int32_t block_size,
                                   uint64_t extra);

}  // namespace kinfer::router
