// ThreadPool: every index is visited exactly once, and the split depends only on the sizes.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace kinfer {
namespace {

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
  ThreadPool pool(4);
  for (int64_t n : {0, 1, 3, 17, 1000, 4097}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    for (int rep = 0; rep < 50; ++rep) {
      pool.ParallelFor(
          n,
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          },
          8);
    }
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 50) << n << " " << i;
  }
}

// Every chunk is a grain-aligned range; together, in order, they tile [0, n) once.
TEST(ThreadPool, ChunkSplitTilesTheRangeInOrder) {
  for (int threads : {2, 3, 4, 16, 64}) {
    for (int64_t grain : {1, 7, 16}) {
      for (int64_t n : {1, 2, 15, 16, 17, 100, 511, 512, 513, 2048, 3072, 16384, 128256}) {
        for (auto how : {ThreadPool::Split::kEven, ThreadPool::Split::kHeadTail}) {
          const ThreadPool::ChunkSplit split(n, grain, threads, how);
          int64_t next = 0;
          for (int64_t c = 0; c < split.chunks(); ++c) {
            const auto [b, e] = split.Range(c);
            ASSERT_EQ(b, next) << n << " " << grain << " " << threads << " chunk " << c;
            ASSERT_LT(b, e) << n << " " << grain << " " << threads << " chunk " << c;
            ASSERT_TRUE(b % grain == 0 && (e % grain == 0 || e == n));
            next = e;
          }
          ASSERT_EQ(next, n) << n << " " << grain << " " << threads;
        }
      }
    }
  }
}

// kHeadTail on a long range: one large head chunk a thread first, then a tail of chunks that
// shrink to one grain, so a late thread leaves the others at most one grain to wait on. kEven,
// or a short range: equal chunks.
TEST(ThreadPool, ChunkSplitHeadsThenShrinkingTail) {
  const ThreadPool::ChunkSplit split(2048, 16, 2, ThreadPool::Split::kHeadTail);  // 128 grains
  // Tail of 16 grains, each chunk a quarter-thread's share of what is left: 2 2 2 2 1 1 1 1 ...
  ASSERT_EQ(split.chunks(), 2 + 4 + 8);
  EXPECT_EQ(split.Range(0), (std::pair<int64_t, int64_t>{0, 56 * 16}));
  EXPECT_EQ(split.Range(1), (std::pair<int64_t, int64_t>{56 * 16, 112 * 16}));
  for (int64_t c = 2; c < split.chunks(); ++c) {
    EXPECT_EQ(split.Range(c).second - split.Range(c).first, c < 6 ? 32 : 16) << c;
  }
  // An LM head's rows (151936, grain 16, 2 threads): sizes never grow and the last is a grain.
  const ThreadPool::ChunkSplit lm(151936, 16, 2, ThreadPool::Split::kHeadTail);
  int64_t last = lm.Range(2).second - lm.Range(2).first;
  for (int64_t c = 3; c < lm.chunks(); ++c) {
    const int64_t len = lm.Range(c).second - lm.Range(c).first;
    EXPECT_LE(len, last) << c;
    last = len;
  }
  EXPECT_EQ(last, 16);
  EXPECT_LE(lm.chunks(), 2 + static_cast<int64_t>(ThreadPool::ChunkSplit::kMaxTailChunks));
  // Many threads on a long range: the tail is coarser but still fits.
  const ThreadPool::ChunkSplit many(1 << 22, 1, 64, ThreadPool::Split::kHeadTail);
  EXPECT_LE(many.chunks(), 64 + static_cast<int64_t>(ThreadPool::ChunkSplit::kMaxTailChunks));
  EXPECT_EQ(many.Range(many.chunks() - 1).second, 1 << 22);
  const ThreadPool::ChunkSplit even(2048, 16, 2, ThreadPool::Split::kEven);
  ASSERT_EQ(even.chunks(), 8);
  for (int64_t c = 0; c < even.chunks(); ++c) {
    EXPECT_EQ(even.Range(c).second - even.Range(c).first, 256) << c;
  }
  // 13 grains: too few for heads, 8 near-equal chunks.
  const ThreadPool::ChunkSplit small(100, 8, 2, ThreadPool::Split::kHeadTail);
  ASSERT_EQ(small.chunks(), 8);
  for (int64_t c = 0; c < small.chunks(); ++c) {
    const int64_t len = small.Range(c).second - small.Range(c).first;
    EXPECT_TRUE((len >= 8 && len <= 16) || c == 7) << c << " " << len;  // the last is clipped
  }
}

// Whatever thread runs a chunk, and however late, ParallelFor hands out exactly ChunkSplit's
// ranges.
TEST(ThreadPool, ParallelForRangesDoNotDependOnTiming) {
  ThreadPool pool(3);
  const int64_t n = 5000, grain = 16;
  for (auto how : {ThreadPool::Split::kEven, ThreadPool::Split::kHeadTail}) {
    const ThreadPool::ChunkSplit split(n, grain, pool.num_threads(), how);
    std::vector<std::pair<int64_t, int64_t>> want;
    for (int64_t c = 0; c < split.chunks(); ++c) want.push_back(split.Range(c));
    for (int rep = 0; rep < 20; ++rep) {
      std::mutex mu;
      std::vector<std::pair<int64_t, int64_t>> got;
      pool.ParallelFor(
          n,
          [&](int64_t b, int64_t e) {
            if ((b / grain + rep) % 3 == 0)
              std::this_thread::sleep_for(std::chrono::microseconds(50));
            std::lock_guard<std::mutex> lock(mu);
            got.emplace_back(b, e);
          },
          grain, how);
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, want) << rep;
    }
  }
}

TEST(ThreadPool, RunGivesEachThreadItsIndex) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.num_threads(), 3);
  std::vector<std::atomic<int>> seen(3);
  for (int rep = 0; rep < 1000; ++rep) {
    pool.Run([&](int t, int n) {
      ASSERT_EQ(n, 3);
      seen[static_cast<size_t>(t)]++;
    });
  }
  for (auto& s : seen) EXPECT_EQ(s.load(), 1000);
}

TEST(ThreadPool, SingleThreadRunsInline) {
  ThreadPool pool(1);
  int calls = 0;
  pool.ParallelFor(10, [&](int64_t b, int64_t e) {
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace kinfer
