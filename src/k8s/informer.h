// An informer: a local cache of one resource type (optionally one namespace, label and field
// selector) kept current by LIST + WATCH, with handlers called on every change. This is what
// controllers and the router read instead of asking the API server.
//
//   Informer slices(client, {.type = kEndpointSlices, .namespace_ = "llm",
//                            .label_selector = "kubernetes.io/service-name=qwen-engine",
//                            .relist_period = 60s});
//   slices.AddHandlers({.on_add = ..., .on_update = ..., .on_delete = ...});
//   slices.Start();
//   if (!slices.WaitForSync(30s)) ...;
//   for (const ObjectPtr& o : slices.List()) ...
//
// How it stays right:
// - LIST in pages, then WATCH from the list's resourceVersion with bookmarks (so a resumed watch
//   starts from a recent version) and a randomized timeoutSeconds (so many clients do not
//   reconnect together).
// - A watch the server ends cleanly is resumed from the last resourceVersion seen.
// - 410 Gone (the version was compacted) relists at once. A failed connection relists too
//   (`relist_on_reconnect`), after a backoff with jitter: a relist compares the fresh list with
//   the cache and reports what disappeared as deletes, so a DELETE missed while disconnected is
//   never lost.
// - `relist_period` forces a full relist on a timer (the watch is ended early for it).
//
// Threads: one thread per informer, named after it, runs the loop and calls the handlers, in
// order, with the cache already updated and no lock held. Get/List/HasSynced are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client.h"
#include "k8s/objects.h"

namespace kinfer::k8s {

// One cached object: its metadata parsed, and the whole object (without managedFields).
struct Object {
  ObjectMeta meta;
  Json json;
};
using ObjectPtr = std::shared_ptr<const Object>;

// "namespace/name", or "name" for cluster-scoped objects: the key informers and work queues use.
std::string ObjectKey(std::string_view ns, std::string_view name);

struct InformerOptions {
  ResourceType type{};
  std::string namespace_;  // "": every namespace
  std::string label_selector{};
  std::string field_selector{};
  int64_t page_size = 500;
  // Each watch asks the server for a timeoutSeconds drawn from [min, 2*min).
  std::chrono::seconds min_watch_timeout{300};
  std::chrono::milliseconds relist_period{0};  // 0: relist only on 410 and reconnects
  bool relist_on_reconnect = true;
  // Waits between failed attempts: exponential with jitter (backoff.h).
  std::chrono::milliseconds backoff_initial{800};
  std::chrono::milliseconds backoff_max{30000};
  std::string name{};  // for logs and the thread name; defaults to the resource
};

struct InformerHandlers {
  std::function<void(const ObjectPtr&)> on_add{};
  std::function<void(const ObjectPtr& old_obj, const ObjectPtr& new_obj)> on_update{};
  // The last state known: the watch event's object, or the cached one when a relist found it
  // gone.
  std::function<void(const ObjectPtr&)> on_delete{};
};

struct InformerStats {
  uint64_t lists = 0;              // successful full lists
  uint64_t relists_gone = 0;       // after 410 Gone
  uint64_t relists_reconnect = 0;  // after a failed watch connection
  uint64_t relists_periodic = 0;
  uint64_t watches = 0;  // watch requests started
  uint64_t resumes = 0;  // watches resumed after a clean end
  uint64_t errors = 0;   // failed lists and watches
  uint64_t events = 0;   // watch events applied (bookmarks not counted)
};

class Informer {
 public:
  Informer(Client& client, InformerOptions options);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before Start.
  void AddHandlers(InformerHandlers handlers);
  void Start();
  // Stops the loop (cancelling a list or watch in flight) and joins the thread.
  void Stop();

  // True once the first LIST has been applied and its handlers called.
  bool HasSynced() const { return synced_.load(); }
  bool WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop = {}) const;

  ObjectPtr Get(std::string_view ns, std::string_view name) const;
  std::vector<ObjectPtr> List() const;
  std::vector<ObjectPtr> List(const std::function<bool(const Object&)>& pred) const;
  size_t size() const;
  std::string resource_version() const;
  InformerStats stats() const;
  const InformerOptions& options() const { return options_; }

 private:
  enum class RelistReason { kInitial, kGone, kReconnect, kPeriodic };
  void Run(std::stop_token stop);
  // Lists, replaces the cache and delivers the differences; counts the list (and `reason`) in
  // stats() before the handlers see any of them.
  Status ListAndReplace(std::stop_token stop, RelistReason reason);
  Status WatchOnce(std::stop_token stop, std::chrono::steady_clock::time_point relist_at);
  Result<ObjectPtr> MakeObject(Json json) const;
  void Upsert(ObjectPtr obj);
  void Remove(ObjectPtr obj);

  Client& client_;
  InformerOptions options_;
  std::vector<InformerHandlers> handlers_;

  mutable std::mutex mu_;
  mutable std::condition_variable_any synced_cv_;
  std::map<std::string, ObjectPtr> cache_;
  std::string resource_version_;
  InformerStats stats_;
  std::atomic<bool> synced_{false};
  std::jthread thread_;
};

}  // namespace kinfer::k8s
