// KvCacheManager: prefix lookups capped to leave the last token computed, all-or-nothing
// allocation, forks sharing full blocks, and every block free after every sequence is freed.
#include "engine/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <numeric>

namespace kinfer::engine {
namespace {

std::vector<int32_t> Tokens(int32_t n, int32_t from = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), from);
  return t;
}

TEST(KvCacheManager, PrefixHitIsCappedSoTheLastTokenIsComputed) {
  KvCacheManager kv(16, 4, true, nullptr);
  auto prompt = Tokens(12);
  ASSERT_TRUE(kv.Allocate(1, 12));
  kv.CacheComputedBlocks(1, prompt, 12, 0);
  // 12 tokens = 3 full blocks, but a 12-token prompt may reuse only 2: its last token needs logits.
  EXPECT_EQ(kv.FindCachedPrefix(prompt, 0).size(), 2u);
  auto longer = Tokens(13);
  EXPECT_EQ(kv.FindCachedPrefix(longer, 0).size(), 3u);
  EXPECT_EQ(kv.FindCachedPrefix(longer, 42).size(), 0u);  // another salt
  auto cached = kv.FindCachedPrefix(longer, 0);
  ASSERT_TRUE(kv.Allocate(2, 13, cached));
  EXPECT_EQ(kv.NumBlocks(2), 4);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(kv.BlockTable(2)[i], kv.BlockTable(1)[i]);
  EXPECT_EQ(kv.pool().ref_count(kv.BlockTable(1)[0]), 2);
  kv.Free(1);
  kv.Free(2);
  EXPECT_EQ(kv.pool().num_free(), 16);
  // Freed blocks keep their hashes: a third request still hits.
  EXPECT_EQ(kv.FindCachedPrefix(longer, 0).size(), 3u);
}

TEST(KvCacheManager, AllocationIsAllOrNothing) {
  KvCacheManager kv(4, 4, true, nullptr);
  ASSERT_TRUE(kv.Allocate(1, 8));
  EXPECT_FALSE(kv.Allocate(2, 12));  // needs 3, 2 free
  EXPECT_EQ(kv.pool().num_free(), 2);
  EXPECT_EQ(kv.NumBlocks(2), 0);
  ASSERT_TRUE(kv.Allocate(1, 9));  // grows by one block
  EXPECT_EQ(kv.NumBlocks(1), 3);
  kv.Free(1);
  EXPECT_EQ(kv.pool().num_free(), 4);
}

TEST(KvCacheManager, ForkSharesFullBlocksAndCopiesThePartialOne) {
  KvCacheManager kv(8, 4, false, nullptr);
  ASSERT_TRUE(kv.Allocate(1, 10));  // 2 full + 1 partial
  ASSERT_TRUE(kv.Fork(1, 2, 10));
  EXPECT_EQ(kv.BlockTable(2)[0], kv.BlockTable(1)[0]);
  EXPECT_EQ(kv.BlockTable(2)[1], kv.BlockTable(1)[1]);
  EXPECT_NE(kv.BlockTable(2)[2], kv.BlockTable(1)[2]);
  EXPECT_EQ(kv.pool().num_free(), 4);  // 3 + 1 used: fewer than two separate prompts (6)
  kv.Free(2);
  kv.Free(1);
  EXPECT_EQ(kv.pool().num_free(), 8);
}

// The sliding-window pool (window 6, blocks of 4): a sequence keeps the blocks its window still
// reaches; a prefix hit needs the global blocks before the hit point and the sliding blocks the
// next token's window reaches, and shrinks to what is still cached there.
TEST(KvCacheManager, SlidingBlocksLeaveWithTheWindowAndBoundPrefixHits) {
  KvCacheManager kv(16, 4, true, nullptr, /*sliding_blocks=*/6, /*sliding_window=*/6);
  ASSERT_TRUE(kv.has_sliding());
  auto prompt = Tokens(20);
  ASSERT_TRUE(kv.Allocate(1, 20));
  EXPECT_EQ(kv.sliding_pool().num_free(), 1);
  kv.CacheComputedBlocks(1, prompt, 20, 0);
  kv.ReleaseOutOfWindow(1, 20);
  // The token at 20 reaches back to 15: block 3 (12..15) on; blocks 0-2 are given back.
  auto sliding = kv.SlidingBlockTable(1);
  ASSERT_EQ(sliding.size(), 5u);
  EXPECT_EQ(sliding[0], -1);
  EXPECT_EQ(sliding[2], -1);
  EXPECT_GE(sliding[3], 0);
  EXPECT_EQ(kv.sliding_pool().num_free(), 4);
  EXPECT_EQ(kv.pool().num_free(), 11);  // the global layers keep every block

  // Another request with the same 21-token prefix: 5 global blocks hit, and the window of the
  // token at 20 needs sliding blocks 3-4, which are held (still cached).
  auto longer = Tokens(21);
  PrefixHit hit = kv.FindCachedPrefix(longer, 0);
  ASSERT_EQ(hit.size(), 5u);
  EXPECT_EQ(hit.sliding[2], -1);
  EXPECT_EQ(hit.sliding[4], sliding[4]);
  ASSERT_TRUE(kv.Allocate(2, 21, hit));
  kv.Free(1);
  kv.Free(2);
  EXPECT_EQ(kv.pool().num_free(), 16);
  EXPECT_EQ(kv.sliding_pool().num_free(), 6);

  // A request that reuses the free sliding blocks evicts their hashes: the hit then stops
  // where the sliding blocks its window needs are still cached: nowhere, here.
  ASSERT_TRUE(kv.Allocate(3, 24));
  kv.Free(3);
  EXPECT_EQ(kv.FindCachedPrefix(longer, 0).size(), 0u);
}

}  // namespace
}  // namespace kinfer::engine
