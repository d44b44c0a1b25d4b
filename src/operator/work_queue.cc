#include "operator/work_queue.h"

#include <algorithm>

namespace kinfer::op {

WorkQueue::WorkQueue(WorkQueueOptions options) : options_(options) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shut_down_) return;
  if (dirty_.contains(key)) return;  // already queued: coalesce
  dirty_.insert(key);
  queued_at_.try_emplace(key, Clock::now());
  if (processing_.contains(key)) return;  // re-queued by Done
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_.erase(key);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return Add(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return;
  auto due = Clock::now() + delay;
  auto it = waiting_.find(key);
  if (it == waiting_.end() || due < it->second) waiting_[key] = due;
  cv_.notify_all();  // a waiting Get may need to wake earlier
}

void WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int n = failures_[key]++;
    double d = static_cast<double>(options_.base_delay.count());
    for (int i = 0; i < n && d < static_cast<double>(options_.max_delay.count()); ++i) d *= 2;
    delay = std::min(options_.max_delay, std::chrono::milliseconds(static_cast<int64_t>(d)));
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int WorkQueue::Failures(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked(Clock::time_point now) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second <= now) {
      std::string key = it->first;
      it = waiting_.erase(it);
      AddLocked(key);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> WorkQueue::Get(std::stop_token stop) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (shut_down_ || stop.stop_requested()) return std::nullopt;
    PromoteDueLocked(Clock::now());
    if (!queue_.empty()) break;
    if (waiting_.empty()) {
      cv_.wait(lock, stop, [&] { return shut_down_ || !queue_.empty() || !waiting_.empty(); });
    } else {
      auto next =
          std::min_element(waiting_.begin(), waiting_.end(), [](const auto& a, const auto& b) {
            return a.second < b.second;
          })->second;
      cv_.wait_until(lock, stop, next, [&] { return shut_down_ || !queue_.empty(); });
    }
  }
  std::string key = queue_.front();
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  auto q = queued_at_.find(key);
  if (q != queued_at_.end()) {
    waited_[key] = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - q->second);
    queued_at_.erase(q);
  }
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.contains(key)) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

std::chrono::milliseconds WorkQueue::TakeWaited(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = waited_.find(key);
  if (it == waited_.end()) return std::chrono::milliseconds(0);
  auto w = it->second;
  waited_.erase(it);
  return w;
}

}  // namespace kinfer::op
