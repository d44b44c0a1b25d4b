// Keeps the router's replicas equal to a Kubernetes Service's EndpointSlices: an informer of
// the shared client (k8s/informer.h: LIST + WATCH with resourceVersion and bookmarks, relist on
// 410 Gone and on every reconnect, a full resync every minute) calls `on_change` with every
// replica of the Service after each change. Credentials: in-cluster (the ServiceAccount token,
// re-read when the kubelet rotates it, and CA) or a kubeconfig, as k8s::LoadClientConfig finds
// them.
//
//   KINFER_ASSIGN_OR_RETURN(auto d, EndpointSliceDiscovery::Create(
//       *ParseSliceSource("models/qwen"), "", [&](auto eps) { router.SetEndpoints(eps); }));
//   d->Start();
//   d->WaitForSync(30s);
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "router/endpoint_slices.h"

namespace kinfer::k8s {
class Client;
class Informer;
}  // namespace kinfer::k8s

namespace kinfer::router {

class EndpointSliceDiscovery {
 public:
  using OnChange = std::function<void(const std::vector<DiscoveredEndpoint>&)>;
  // `kubeconfig`: a path, or "" for the usual lookup (in-cluster when run in a pod).
  static Result<std::unique_ptr<EndpointSliceDiscovery>> Create(SliceSource source,
                                                                const std::string& kubeconfig,
                                                                OnChange on_change);
  ~EndpointSliceDiscovery();

  void Start();
  // True once the first LIST has been applied (and on_change called with it).
  bool WaitForSync(std::chrono::milliseconds timeout);
  void Stop();

  // "models/qwen via in-cluster", for logs.
  std::string Describe() const;
  // The informer's counters (lists, relists by reason, watch events, errors), for /metrics.
  struct Stats {
    uint64_t lists = 0, relists_gone = 0, relists_reconnect = 0, relists_periodic = 0;
    uint64_t events = 0, errors = 0;
  };
  Stats stats() const;

 private:
  EndpointSliceDiscovery() = default;
  void Publish();

  SliceSource source_;
  OnChange on_change_;
  std::unique_ptr<k8s::Client> client_;
  std::unique_ptr<k8s::Informer> informer_;
  std::mutex mu_;
  std::set<std::string> reported_;  // problems already logged
};

}  // namespace kinfer::router
