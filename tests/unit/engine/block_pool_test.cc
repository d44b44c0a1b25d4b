// BlockPool and prefix hashing: reference counts, LRU eviction order, O(1) removal from the
// middle of the free queue, hash chains and cache-salt isolation. The reference is the
// behaviour vLLM's v1 BlockPool documents (free blocks keep their hash until reused).
#include "engine/block_pool.h"

#include <gtest/gtest.h>

#include <numeric>

namespace kinfer::engine {
namespace {

std::vector<int32_t> Tokens(int32_t from, int32_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), from);
  return t;
}

TEST(BlockPool, AllocatesFromTheFrontAndFreesToTheBack) {
  BlockPool pool(4);
  EXPECT_EQ(pool.FreeQueue(), (std::vector<int32_t>{0, 1, 2, 3}));
  int32_t a = *pool.Allocate(), b = *pool.Allocate();
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_DOUBLE_EQ(pool.usage(), 0.5);
  pool.Unref(b);
  pool.Unref(a);
  EXPECT_EQ(pool.FreeQueue(), (std::vector<int32_t>{2, 3, 1, 0}));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool.Allocate());
  EXPECT_FALSE(pool.Allocate().has_value());
}

TEST(BlockPool, RefCountsKeepSharedBlocksOutOfTheFreeQueue) {
  BlockPool pool(2);
  int32_t a = *pool.Allocate();
  pool.Ref(a);
  EXPECT_EQ(pool.ref_count(a), 2);
  pool.Unref(a);
  EXPECT_EQ(pool.num_free(), 1);
  pool.Unref(a);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockPool, EvictsLeastRecentlyUsedCachedBlock) {
  BlockPool pool(3);
  auto hashes = HashBlocks(Tokens(0, 12), 4, 0);
  std::vector<int32_t> blocks;
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(*pool.Allocate());
    pool.Cache(blocks.back(), hashes[static_cast<size_t>(i)]);
  }
  // Free in reverse: block 2 first (least recently used), block 0 last.
  for (int i = 2; i >= 0; --i) pool.Unref(blocks[static_cast<size_t>(i)]);
  EXPECT_EQ(pool.FreeQueue(), (std::vector<int32_t>{2, 1, 0}));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(pool.Lookup(hashes[static_cast<size_t>(i)]), blocks[static_cast<size_t>(i)]);
  // A hit on a free block in the middle takes it out of the queue in O(1).
  pool.Ref(1);
  EXPECT_EQ(pool.FreeQueue(), (std::vector<int32_t>{2, 0}));
  // The next allocation evicts block 2 and forgets its hash; the others stay cached.
  EXPECT_EQ(*pool.Allocate(), 2);
  EXPECT_FALSE(pool.Lookup(hashes[2]).has_value());
  EXPECT_TRUE(pool.Lookup(hashes[0]).has_value());
  EXPECT_FALSE(pool.is_cached(2));
}

TEST(BlockHash, ChainsOverParentsAndIsolatesBySalt) {
  auto a = HashBlocks(Tokens(0, 8), 4, 0);
  auto b = HashBlocks(Tokens(0, 8), 4, 0);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1], b[1]);
  EXPECT_EQ(a[1].parent, a[0].value);
  // Same second block after a different first block: a different hash.
  std::vector<int32_t> other = Tokens(0, 8);
  other[0] = 99;
  auto c = HashBlocks(other, 4, 0);
  EXPECT_EQ(c[1].tokens, a[1].tokens);
  EXPECT_FALSE(c[1] == a[1]);
  // Different cache salts never share.
  auto salted = HashBlocks(Tokens(0, 8), 4, HashExtraKeys("tenant-a", ""));
  auto salted2 = HashBlocks(Tokens(0, 8), 4, HashExtraKeys("tenant-b", ""));
  EXPECT_FALSE(salted[0] == a[0]);
  EXPECT_FALSE(salted[0] == salted2[0]);
  // A partial block is not hashed.
  EXPECT_EQ(HashBlocks(Tokens(0, 7), 4, 0).size(), 1u);
}

}  // namespace
}  // namespace kinfer::engine
