// The prefix index: a chain matches up to its first miss (as the engine's prefix cache does),
// memory stays within capacity, and eviction takes the least recently used, tail of a chain
// first. The reference is a plain model of an LRU set written out in each test.
#include "router/prefix_index.h"

#include <gtest/gtest.h>

#include <vector>

namespace kinfer::router {
namespace {

TEST(PrefixIndex, MatchesLeadingBlocksUpToTheFirstMiss) {
  PrefixIndex idx(100);
  std::vector<uint64_t> a = {1, 2, 3, 4};
  EXPECT_EQ(idx.Match(a), 0u);
  idx.Insert(a);
  EXPECT_EQ(idx.Match(a), 4u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{1, 2, 9, 4}), 2u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{9, 2, 3}), 0u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{1, 2, 3, 4, 5, 6}), 4u);
  EXPECT_EQ(idx.size(), 4u);
  idx.Insert(a);  // again: no duplicates
  EXPECT_EQ(idx.size(), 4u);
}

TEST(PrefixIndex, StaysWithinCapacityAndEvictsTheTailOfAChainFirst) {
  PrefixIndex idx(6);
  idx.Insert(std::vector<uint64_t>{1, 2, 3, 4});
  idx.Insert(std::vector<uint64_t>{10, 11, 12, 13});  // over capacity by two
  EXPECT_EQ(idx.size(), 6u);
  // The older chain lost its tail, not its head: it still matches its first two blocks.
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{1, 2, 3, 4}), 2u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{10, 11, 12, 13}), 4u);
  // A chain longer than the index keeps its head.
  PrefixIndex small(3);
  small.Insert(std::vector<uint64_t>{1, 2, 3, 4, 5});
  EXPECT_EQ(small.Match(std::vector<uint64_t>{1, 2, 3, 4, 5}), 3u);
}

TEST(PrefixIndex, UseRefreshesAndShrinkingEvictsLeastRecentlyUsed) {
  PrefixIndex idx(4);
  idx.Insert(std::vector<uint64_t>{1, 2});
  idx.Insert(std::vector<uint64_t>{3, 4});
  idx.Insert(std::vector<uint64_t>{1, 2});  // {1, 2} is the most recent again
  idx.Insert(std::vector<uint64_t>{5});     // evicts 4, the least recently used
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{3, 4}), 1u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{1, 2}), 2u);
  idx.SetCapacity(2);  // keeps the two most recent: 5, then 1
  EXPECT_EQ(idx.size(), 2u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{5}), 1u);
  EXPECT_EQ(idx.Match(std::vector<uint64_t>{1, 2}), 1u);
  idx.SetCapacity(0);
  EXPECT_EQ(idx.size(), 0u);
  idx.Insert(std::vector<uint64_t>{7});
  EXPECT_EQ(idx.size(), 0u);
}

TEST(PrefixIndex, MemoryIsBoundedUnderChurn) {
  PrefixIndex idx(1000);
  std::vector<uint64_t> chain(64);
  for (uint64_t i = 0; i < 10000; ++i) {
    for (size_t k = 0; k < chain.size(); ++k) chain[k] = i * 1000 + k;
    idx.Insert(chain);
    ASSERT_LE(idx.size(), 1000u);
  }
  EXPECT_EQ(idx.Match(chain), 64u);  // the latest chain is whole
}

}  // namespace
}  // namespace kinfer::router
