// The controller's work queue, with client-go's workqueue guarantees:
// - a key is queued at most once however often it is added (changes coalesce);
// - a key is handed to one worker at a time: added again while in process, it is marked dirty
//   and queued again when that worker calls Done, so the next run sees the newest state;
// - failed keys come back after a per-key exponential backoff (AddRateLimited) until Forget;
// - AddAfter delays a key (a later, earlier AddAfter wins).
//
//   while (auto key = queue.Get(stop)) {
//     Status s = Reconcile(*key);
//     if (s.ok()) queue.Forget(*key); else queue.AddRateLimited(*key);
//     queue.Done(*key);
//   }
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

namespace kinfer::op {

struct WorkQueueOptions {
  std::chrono::milliseconds base_delay{500};    // first retry of a failing key
  std::chrono::milliseconds max_delay{300000};  // retries back off to this
};

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WorkQueue(WorkQueueOptions options = {});

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  // Adds after this key's next backoff delay (doubling per failure, capped).
  void AddRateLimited(const std::string& key);
  // Clears the key's failure count (after a success).
  void Forget(const std::string& key);
  int Failures(const std::string& key) const;

  // Blocks until a key is ready, or returns nullopt once `stop` is requested or ShutDown called.
  std::optional<std::string> Get(std::stop_token stop);
  // The worker is finished with `key`.
  void Done(const std::string& key);
  void ShutDown();

  size_t Len() const;  // queued now (not delayed, not in process)
  // How long the key has waited since it was queued (for a queue-latency metric); 0 if unknown.
  std::chrono::milliseconds TakeWaited(const std::string& key);

 private:
  void AddLocked(const std::string& key);
  void PromoteDueLocked(Clock::time_point now);

  WorkQueueOptions options_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;  // queued (or to queue when Done)
  std::set<std::string> processing_;
  std::map<std::string, Clock::time_point> waiting_;  // delayed keys and when they are due
  std::map<std::string, int> failures_;
  std::map<std::string, Clock::time_point> queued_at_;
  std::map<std::string, std::chrono::milliseconds> waited_;
  bool shut_down_ = false;
};

}  // namespace kinfer::op
