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

}  // namespace
}  // namespace kinfer::engine
