// The work queue's guarantees, as client-go's workqueue states them (k8s.io/client-go/util/
// workqueue): de-duplication, one worker per key, dirty keys re-queued on Done, per-key backoff.
#include "operator/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace kinfer::op {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueue, AddsOfAQueuedKeyCoalesce) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(*q.Get({}), "a");
  EXPECT_EQ(*q.Get({}), "b");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, AKeyInProcessIsNotHandedToASecondWorkerButComesBackAfterDone) {
  WorkQueue q;
  q.Add("a");
  auto k = q.Get({});
  ASSERT_EQ(*k, "a");
  q.Add("a");  // changed while a worker has it
  EXPECT_EQ(q.Len(), 0u);
  std::stop_source stop;
  std::atomic<bool> got{false};
  std::thread second([&] {
    auto k2 = q.Get(stop.get_token());
    got = k2.has_value();
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(got);  // the second worker waits
  q.Done("a");
  second.join();
  EXPECT_TRUE(got);  // and then sees the newest state
}

TEST(WorkQueue, FailuresBackOffPerKeyUntilForgotten) {
  WorkQueue q({.base_delay = 40ms, .max_delay = 160ms});
  auto t0 = std::chrono::steady_clock::now();
  q.AddRateLimited("a");  // 40 ms
  EXPECT_EQ(q.Len(), 0u);
  ASSERT_EQ(*q.Get({}), "a");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 35ms);
  q.Done("a");
  q.AddRateLimited("a");  // 80 ms
  q.AddRateLimited("a");  // 160 ms (max); the earlier due time wins
  EXPECT_EQ(q.Failures("a"), 3);
  t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(*q.Get({}), "a");
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 70ms);
  EXPECT_LT(waited, 150ms);
  q.Done("a");
  q.Forget("a");
  EXPECT_EQ(q.Failures("a"), 0);
}

TEST(WorkQueue, AnImmediateAddOvertakesADelayedOne) {
  WorkQueue q;
  q.AddAfter("a", 10s);
  q.Add("a");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(*q.Get({}), "a");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(WorkQueue, GetReturnsNothingOnStopOrShutDown) {
  WorkQueue q;
  std::stop_source stop;
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  EXPECT_FALSE(q.Get(stop.get_token()).has_value());
  t.join();
  q.ShutDown();
  q.Add("x");
  EXPECT_FALSE(q.Get({}).has_value());
}

TEST(WorkQueue, ManyWorkersNeverShareAKey) {
  WorkQueue q;
  std::atomic<int> in_a{0}, max_in_a{0}, done{0};
  std::stop_source stop;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.Get(stop.get_token())) {
        if (*k == "a") {
          int n = ++in_a;
          max_in_a = std::max(max_in_a.load(), n);
          std::this_thread::sleep_for(1ms);
          --in_a;
        }
        ++done;
        q.Done(*k);
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    q.Add("a");
    q.Add("k" + std::to_string(i % 7));
    if (i % 10 == 0) std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(200ms);
  stop.request_stop();
  for (auto& t : workers) t.join();
  EXPECT_EQ(max_in_a, 1);
  EXPECT_GT(done, 10);
}

}  // namespace
}  // namespace kinfer::op
