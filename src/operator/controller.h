// The LLMService controller: informers on LLMServices and on every kind of child, a work queue
// of LLMService keys, and workers that reconcile one key at a time:
//   1. read the LLMService from the informer (gone or being deleted: nothing to do, the garbage
//      collector removes the children through their ownerReferences);
//   2. compute the desired objects (desired.h) and server-side apply each of them, with
//      fieldManager kinfer-operator and force, so fields other managers own are left alone;
//   3. delete children it owns that are no longer desired;
//   4. apply the status subresource when it changed, and record Events on condition changes.
// A child's change enqueues its owner (found through its controller ownerReference); a failed
// reconcile comes back with per-key backoff; every key is resynced periodically.
//
// Threads: each informer has its own; `workers` worker threads run while this process leads
// (StartWorkers/StopWorkers, driven by leader election), and every API write they make uses the
// `leading` stop token, so a leader that loses its lease stops writing at once. Informers run
// on standbys too, so a new leader starts with warm caches.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client.h"
#include "k8s/events.h"
#include "k8s/informer.h"
#include "operator/desired.h"
#include "operator/work_queue.h"
#include "server/metrics.h"

namespace kinfer::op {

struct ControllerOptions {
  std::string namespace_;  // "": every namespace
  int workers = 2;
  std::chrono::milliseconds resync_period{300000};
  ReconcileConfig reconcile;
  std::string field_manager = "kinfer-operator";
  std::string instance;  // this pod, for Events' reportingInstance
  WorkQueueOptions queue;
  // After a broken watch, resume from the last resourceVersion (client-go's reflector) rather
  // than relist: the API server replays what was missed, or answers 410 Gone and the informer
  // relists then. The periodic resync covers the rest.
  bool relist_on_reconnect = false;
};

class Controller {
 public:
  Controller(k8s::Client& client, ControllerOptions options, server::MetricsRegistry* metrics);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  void StartInformers();
  bool HasSynced() const;
  bool WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop = {});
  // Starts the workers and the resync timer, and queues every LLMService. Writes stop when
  // `leading` fires; StopWorkers must follow before StartWorkers is called again.
  void StartWorkers(std::stop_token leading);
  void StopWorkers();
  void Stop();

  // One reconcile of "namespace/name" (what a worker runs; exposed for tests).
  Status Reconcile(const std::string& key, std::stop_token stop);

  // Counters for tests and metrics.
  uint64_t reconciles() const { return reconciles_.load(); }

 private:
  void Enqueue(const std::string& key) { queue_.Add(key); }
  void EnqueueOwner(const k8s::ObjectPtr& child);
  void Worker(std::stop_token stop);
  void ResyncLoop(std::stop_token stop);
  const k8s::ResourceType* TypeOf(const Json& obj) const;
  Status Prune(const LLMService& s, const DesiredState& want, std::stop_token stop);
  Status ApplyStatus(const LLMService& s, const Json& status, std::stop_token stop);
  void RecordEvent(const Json& regarding, k8s::EventType type, const std::string& reason,
                   const std::string& note, std::stop_token stop);

  k8s::Client& client_;
  ControllerOptions options_;
  server::MetricsRegistry* metrics_;
  k8s::EventRecorder events_;
  WorkQueue queue_;
  std::unique_ptr<k8s::Informer> services_;
  std::vector<std::pair<const k8s::ResourceType*, std::unique_ptr<k8s::Informer>>> children_;
  std::vector<std::jthread> workers_;
  std::jthread resync_;
  std::atomic<uint64_t> reconciles_{0};
  server::MetricFamily* reconcile_total_ = nullptr;
  server::MetricFamily* reconcile_seconds_ = nullptr;
  server::MetricFamily* queue_wait_seconds_ = nullptr;
  server::MetricFamily* queue_depth_ = nullptr;
};

}  // namespace kinfer::op
