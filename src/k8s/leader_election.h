// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules and defaults (15 s
// lease, 10 s renew deadline, 2 s retry), so that of N replicas of a controller exactly one
// writes at a time.
//
//   LeaderElector elector(client, {.namespace_ = "kinfer-system", .name = "kinfer-operator",
//                                  .identity = pod_name},
//                         {.on_started_leading = [&](std::stop_token leading) {
//                            controller.Start(leading);  // writes use `leading` as their stop
//                            token
//                          },
//                          .on_stopped_leading = [&] { controller.Stop(); }});
//   elector.Run(sigterm_token);  // returns after releasing the lease
//
// The rules:
// - A candidate takes the lease when it does not exist, has no holder, or its record has not
//   changed for lease_duration as measured on the candidate's own clock from when it last saw it
//   change (not from the holder's renewTime, so clock skew between nodes cannot cut a lease
//   short). It retries every retry_period (with up to 20% jitter).
// - The leader renews every retry_period. If no renewal has succeeded for renew_deadline (shorter
//   than the lease, so it steps down before anyone may take over), it steps down: the `leading`
//   token fires at once, cancelling its API calls in flight, on_stopped_leading runs (it must
//   stop every writer before returning), and it becomes a candidate again.
// - When Run's stop token fires, a leader steps down the same way and then releases the lease
//   (holder cleared, duration 1 s) so that a standby takes over within one retry period.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "k8s/client.h"
#include "k8s/objects.h"

namespace kinfer::k8s {

struct LeaderElectionOptions {
  std::string namespace_;
  std::string name{};
  std::string identity{};  // unique per process; DefaultIdentity() when empty
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  bool release_on_stop = true;
};

struct LeaderCallbacks {
  // On the elector's thread, right after the lease is acquired. Must return promptly (start
  // threads); `leading` fires when leadership ends.
  std::function<void(std::stop_token leading)> on_started_leading{};
  // After `leading` fired; must not return before every writer has stopped.
  std::function<void()> on_stopped_leading{};
  // Whenever the observed holder changes (also to ourselves or to nobody).
  std::function<void(const std::string& holder)> on_new_leader{};
};

class LeaderElector {
 public:
  LeaderElector(Client& client, LeaderElectionOptions options, LeaderCallbacks callbacks);
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns, leads and campaigns again until `stop`; then steps down and releases the lease.
  void Run(std::stop_token stop);

  bool IsLeader() const { return leading_.load(); }
  std::string holder() const;
  const std::string& identity() const { return options_.identity; }
  // Times this process acquired the lease.
  uint64_t acquisitions() const { return acquisitions_.load(); }

  // "<hostname>_<random>": the pod name (HOSTNAME in a pod) plus a suffix that differs between
  // restarts of the same pod.
  static std::string DefaultIdentity();

 private:
  // One attempt: take or renew the lease. Ok(true) when we hold it afterwards.
  Result<bool> TryAcquireOrRenew(std::stop_token stop);
  Status Release();
  void Observe(const LeaseSpec& spec);

  Client& client_;
  LeaderElectionOptions options_;
  LeaderCallbacks callbacks_;

  mutable std::mutex mu_;
  std::optional<LeaseSpec> observed_;
  std::string observed_rv_;
  std::chrono::steady_clock::time_point observed_time_;
  std::atomic<bool> leading_{false};
  std::atomic<uint64_t> acquisitions_{0};
};

}  // namespace kinfer::k8s
