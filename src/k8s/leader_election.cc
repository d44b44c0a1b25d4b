#include "k8s/leader_election.h"

#include <unistd.h>

#include <condition_variable>
#include <random>
#include <thread>

#include "core/log.h"
#include "k8s/backoff.h"
#include "k8s/resource.h"

namespace kinfer::k8s {
namespace {

using Clock = std::chrono::steady_clock;

bool SleepFor(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; });
}

// retry_period stretched by up to 20%, as client-go's JitterUntil with factor 1.2.
std::chrono::milliseconds Jittered(std::chrono::milliseconds d) {
  return RandomBetween(d, d + d / 5 + std::chrono::milliseconds(1));
}

bool SameSpec(const LeaseSpec& a, const LeaseSpec& b) {
  return a.holder_identity == b.holder_identity &&
         a.lease_duration_seconds == b.lease_duration_seconds && a.acquire_time == b.acquire_time &&
         a.renew_time == b.renew_time && a.lease_transitions == b.lease_transitions;
}

Json LeaseJson(const std::string& ns, const std::string& name, const LeaseSpec& spec,
               const std::string& resource_version) {
  Json j = {{"apiVersion", "coordination.k8s.io/v1"},
            {"kind", "Lease"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec",
             {{"holderIdentity", spec.holder_identity},
              {"leaseDurationSeconds", spec.lease_duration_seconds},
              {"acquireTime", spec.acquire_time},
              {"renewTime", spec.renew_time},
              {"leaseTransitions", spec.lease_transitions}}}};
  if (!resource_version.empty()) j["metadata"]["resourceVersion"] = resource_version;
  return j;
}

}  // namespace

LeaderElector::LeaderElector(Client& client, LeaderElectionOptions options,
                             LeaderCallbacks callbacks)
    : client_(client), options_(std::move(options)), callbacks_(std::move(callbacks)) {
  if (options_.identity.empty()) options_.identity = DefaultIdentity();
  KINFER_CHECK(options_.renew_deadline < options_.lease_duration);
  KINFER_CHECK(options_.retry_period < options_.renew_deadline);
}

std::string LeaderElector::DefaultIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "kinfer");
  }
  std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}_{:08x}", host, static_cast<uint32_t>(rng()));
}

std::string LeaderElector::holder() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observed_ ? observed_->holder_identity : "";
}

void LeaderElector::Observe(const LeaseSpec& spec) {
  std::string before, after;
  {
    std::lock_guard<std::mutex> lock(mu_);
    before = observed_ ? observed_->holder_identity : "";
    if (!observed_ || !SameSpec(*observed_, spec)) {
      observed_ = spec;
      observed_time_ = Clock::now();
    }
    after = observed_->holder_identity;
  }
  if (before != after) {
    KINFER_LOG_INFO("leader election {}/{}: leader is now '{}'", options_.namespace_, options_.name,
                    after);
    if (callbacks_.on_new_leader) callbacks_.on_new_leader(after);
  }
}

Result<bool> LeaderElector::TryAcquireOrRenew(std::stop_token stop) {
  auto now_wall = std::chrono::system_clock::now();
  LeaseSpec mine;
  mine.holder_identity = options_.identity;
  mine.lease_duration_seconds = static_cast<int32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration).count());
  mine.acquire_time = FormatMicroTime(now_wall);
  mine.renew_time = mine.acquire_time;

  auto got = client_.Get(kLeases, options_.namespace_, options_.name, {}, stop);
  if (!got.ok()) {
    if (!IsNotFound(got.status())) return got.status();
    auto created = client_.Create(kLeases, options_.namespace_,
                                  LeaseJson(options_.namespace_, options_.name, mine, ""),
                                  "kinfer-leader-election", stop);
    if (!created.ok()) return created.status();
    auto lease = ParseLease(*created, "lease");
    if (!lease.ok()) return lease.status();
    Observe(lease->spec);
    std::lock_guard<std::mutex> lock(mu_);
    observed_rv_ = lease->metadata.resource_version;
    return true;
  }
  KINFER_ASSIGN_OR_RETURN(Lease lease, ParseLease(*got, "lease " + options_.name));
  Observe(lease.spec);
  const LeaseSpec& cur = lease.spec;
  bool held_by_us = cur.holder_identity == options_.identity;
  if (!held_by_us && !cur.holder_identity.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto duration = std::chrono::seconds(
        cur.lease_duration_seconds > 0 ? cur.lease_duration_seconds : mine.lease_duration_seconds);
    if (observed_time_ + duration > Clock::now()) return false;  // held and not expired
  }
  if (held_by_us) {
    mine.acquire_time = cur.acquire_time;
    mine.lease_transitions = cur.lease_transitions;
  } else {
    mine.lease_transitions = cur.lease_transitions + 1;
  }
  // PUT with the resourceVersion we read: if anyone wrote in between, this is a Conflict.
  auto updated = client_.Update(
      kLeases, options_.namespace_,
      LeaseJson(options_.namespace_, options_.name, mine, lease.metadata.resource_version), {},
      "kinfer-leader-election", stop);
  if (!updated.ok()) return updated.status();
  KINFER_ASSIGN_OR_RETURN(Lease after, ParseLease(*updated, "lease " + options_.name));
  Observe(after.spec);
  return true;
}

Status LeaderElector::Release() {
  auto got = client_.Get(kLeases, options_.namespace_, options_.name);
  if (!got.ok()) return got.status();
  KINFER_ASSIGN_OR_RETURN(Lease lease, ParseLease(*got, "lease " + options_.name));
  if (lease.spec.holder_identity != options_.identity) return Status::Ok();
  LeaseSpec released;
  released.holder_identity = "";
  released.lease_duration_seconds = 1;
  released.acquire_time = FormatMicroTime(std::chrono::system_clock::now());
  released.renew_time = released.acquire_time;
  released.lease_transitions = lease.spec.lease_transitions;
  auto r = client_.Update(
      kLeases, options_.namespace_,
      LeaseJson(options_.namespace_, options_.name, released, lease.metadata.resource_version), {},
      "kinfer-leader-election");
  if (!r.ok()) return r.status();
  KINFER_LOG_INFO("leader election {}/{}: released the lease", options_.namespace_, options_.name);
  return Status::Ok();
}

void LeaderElector::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    // --- campaign ---
    bool acquired = false;
    while (!stop.stop_requested()) {
      auto r = TryAcquireOrRenew(stop);
      if (r.ok() && *r) {
        acquired = true;
        break;
      }
      if (!r.ok() && r.status().code() != StatusCode::kCancelled) {
        KINFER_LOG_DEBUG("leader election {}/{}: not acquired: {}", options_.namespace_,
                         options_.name, r.status().message());
      }
      if (!SleepFor(Jittered(options_.retry_period), stop)) break;
    }
    if (!acquired) break;

    // --- lead ---
    std::stop_source leading;
    leading_ = true;
    ++acquisitions_;
    KINFER_LOG_INFO("leader election {}/{}: '{}' is leading", options_.namespace_, options_.name,
                    options_.identity);
    if (callbacks_.on_started_leading) callbacks_.on_started_leading(leading.get_token());
    auto last_renew = Clock::now();
    bool lost = false;
    while (!stop.stop_requested()) {
      if (!SleepFor(options_.retry_period, stop)) break;
      // Each attempt is cut off at the renew deadline, so a hung call cannot keep us leading.
      auto deadline = last_renew + options_.renew_deadline;
      std::stop_source attempt;
      std::stop_callback forward(stop, [&attempt] { attempt.request_stop(); });
      std::jthread timer([&attempt, deadline](std::stop_token t) {
        std::mutex mu;
        std::condition_variable_any cv;
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_until(lock, t, deadline, [] { return false; })) return;
        attempt.request_stop();
      });
      auto r = TryAcquireOrRenew(attempt.get_token());
      timer.request_stop();
      timer.join();
      if (r.ok() && *r) {
        last_renew = Clock::now();
        continue;
      }
      if (stop.stop_requested()) break;
      KINFER_LOG_WARN("leader election {}/{}: renewal failed: {}", options_.namespace_,
                      options_.name,
                      r.ok() ? "the lease has another holder" : r.status().message());
      if (!r.ok() && Clock::now() < deadline) continue;  // retry within the deadline
      lost = true;
      break;
    }
    // --- step down: stop every writer before anything else ---
    leading.request_stop();
    leading_ = false;
    if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
    if (lost) {
      KINFER_LOG_ERROR(
          "leader election {}/{}: lost the lease (no renewal for {} ms); stepped "
          "down",
          options_.namespace_, options_.name, options_.renew_deadline.count());
      continue;
    }
    if (options_.release_on_stop) {
      Status s = Release();
      if (!s.ok()) {
        KINFER_LOG_WARN("leader election {}/{}: could not release the lease: {}",
                        options_.namespace_, options_.name, s.message());
      }
    }
    return;
  }
}

}  // namespace kinfer::k8s
