// The scale subresource (autoscaling/v1 Scale) of any scalable object: read it, and set
// spec.replicas only if it still holds the value the caller saw, so several writers racing
// (two routers bringing a model up from zero, the autoscaler and a `kubectl scale`) cannot undo
// each other's change.
//
//   KINFER_ASSIGN_OR_RETURN(Scale s, GetScale(client, op::kLLMServices, "llm", "qwen"));
//   Status st = SetReplicasIf(client, op::kLLMServices, "llm", "qwen", /*from=*/0, /*to=*/1);
//   if (IsReplicasChanged(st)) { /* someone else moved it first: nothing to do */ }
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "core/status.h"
#include "k8s/client.h"
#include "k8s/objects.h"  // Scale

namespace kinfer::k8s {

Result<Scale> GetScale(Client& client, const ResourceType& type, std::string_view ns,
                       std::string_view name, std::stop_token stop = {});

// A JSON Patch on NAME/scale: [{test /spec/replicas == from}, {replace /spec/replicas = to}]
// (from 0: [{test /spec == {}}, {add /spec/replicas = to}], as a Scale at 0 has no replicas
// member). The API server applies both or neither, atomically with other writes. When spec.replicas
// was not `from`, the error is kFailedPrecondition ("llm/qwen: replicas is 2, not 0"): see
// IsReplicasChanged. Other errors (a validation rule refusing `to`, no permission) come back as the
// API server said them.
Status SetReplicasIf(Client& client, const ResourceType& type, std::string_view ns,
                     std::string_view name, int32_t from, int32_t to,
                     std::string_view field_manager = "kinfer-operator", std::stop_token stop = {});

// Whether SetReplicasIf failed only because spec.replicas was no longer `from`.
bool IsReplicasChanged(const Status& s);

// Keeps a scalable object off zero while someone waits for it: the router's half of scale from
// zero. While `waiting()` is true, it sets spec.replicas from 0 to 1 (SetReplicasIf, so routers
// racing, or the autoscaler scaling up meanwhile, do no harm), and tries again every `recheck`
// while requests still wait (a replica may go away before it is ready; the count may go back to
// 0 under it); failures back off. Its own thread ("kinfer-unzero"), joined by the destructor.
//
//   ScaleFromZero up(client, {.type = &kLLMServices, .namespace_ = "llm", .name = "qwen"},
//                    [&] { return held > 0 && routable == 0; });
//   ... a request is held with no routable replica: up.Wake();
struct ScaleFromZeroOptions {
  const ResourceType* type = nullptr;
  std::string namespace_{};
  std::string name{};
  std::string field_manager = "kinfer-router";
  std::chrono::milliseconds recheck{2000};
};

class ScaleFromZero {
 public:
  ScaleFromZero(Client& client, ScaleFromZeroOptions options, std::function<bool()> waiting);
  ~ScaleFromZero();
  ScaleFromZero(const ScaleFromZero&) = delete;
  ScaleFromZero& operator=(const ScaleFromZero&) = delete;

  // Something may now be waiting: check at once rather than at the next recheck.
  void Wake();

  uint64_t scaled_up() const { return scaled_up_.load(); }  // 0 -> 1 writes that landed
  uint64_t failures() const { return failures_.load(); }    // errors other than "not at 0"

 private:
  void Run(std::stop_token stop);

  Client& client_;
  ScaleFromZeroOptions options_;
  std::function<bool()> waiting_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool woken_ = false;
  std::atomic<uint64_t> scaled_up_{0}, failures_{0};
  std::jthread thread_;
};

}  // namespace kinfer::k8s
