// The pool: the engine's chained block hashes (engine::HashBlocks is the reference), picks
// counted at once, prefix affinity through the index, discovery updates that keep what is
// known about a replica, probes and scrapes that gate and size things.
#include "router/backend_pool.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "engine/block_hash.h"

namespace kinfer::router {
namespace {

DiscoveredEndpoint At(int port) { return {Endpoint{"10.0.0.1", port}, true, false, ""}; }

RequestInfo Prompt(int group, int unique, size_t len = 64) {
  RequestInfo r;
  r.exact_tokens = true;
  for (size_t i = 0; i < len; ++i) r.prompt.push_back(group * 1000 + static_cast<int>(i));
  for (int i = 0; i < 8; ++i) r.prompt.push_back(-unique);
  return r;
}

class PoolTest : public ::testing::Test {
 protected:
  void Make(Policy policy, int n) {
    PoolOptions o;
    o.policy = policy;
    o.picker.seed = 17;
    pool_ = std::make_unique<BackendPool>(o);
    std::vector<DiscoveredEndpoint> eps;
    for (int i = 0; i < n; ++i) eps.push_back(At(8000 + i));
    pool_->SetEndpoints(eps);
    for (auto& b : pool_->Backends()) pool_->OnProbe(*b, true);
  }
  std::unique_ptr<BackendPool> pool_;
};

TEST(PrefixHashes, AreTheEnginesChainedBlockHashes) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back(i * 7 % 13);
  for (uint64_t extra : {uint64_t{0}, engine::HashExtraKeys("salt", "")}) {
    auto ours = PrefixHashes(tokens, 16, extra);
    auto engine_hashes = engine::HashBlocks(tokens, 16, extra);
    ASSERT_EQ(ours.size(), 6u);  // full blocks only
    ASSERT_EQ(ours.size(), engine_hashes.size());
    for (size_t i = 0; i < ours.size(); ++i) EXPECT_EQ(ours[i], engine_hashes[i].value);
  }
}

TEST_F(PoolTest, NothingIsRoutableBeforeAProbePasses) {
  pool_ = std::make_unique<BackendPool>(PoolOptions{});
  pool_->SetEndpoints({At(1), At(2)});
  EXPECT_EQ(pool_->routable(), 0);
  EXPECT_FALSE(pool_->Choose(Prompt(1, 1), {}, std::nullopt).has_value());
  pool_->OnProbe(*pool_->Backends()[1], true);
  auto p = pool_->Choose(Prompt(1, 1), {}, std::nullopt);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->backend->endpoint().port, 2);
  EXPECT_EQ(p->routable, 1);
}

TEST_F(PoolTest, SamePrefixSameReplicaAndGroupsSpread) {
  Make(Policy::kPrefix, 4);
  std::map<int, std::set<std::string>> where;
  for (int round = 0; round < 5; ++round) {
    for (int g = 0; g < 8; ++g) {
      auto p = pool_->Choose(Prompt(g, round * 100 + g), {}, std::nullopt);
      ASSERT_TRUE(p);
      where[g].insert(p->backend->name());
      if (round > 0) {
        EXPECT_EQ(p->matched_blocks, 4u) << "group " << g;
      }
      EXPECT_EQ(p->prompt_blocks, 4u);  // 72 tokens: 4 full blocks of 16
      pool_->Release(*p->backend, Outcome::kSuccess);
    }
  }
  std::set<std::string> used;
  for (auto& [g, s] : where) {
    EXPECT_EQ(s.size(), 1u) << "group " << g << " moved";
    used.insert(*s.begin());
  }
  EXPECT_EQ(used.size(), 4u);  // eight cold groups over four idle replicas
}

TEST_F(PoolTest, PicksCountAtOnceSoABurstDoesNotPileUp) {
  Make(Policy::kLeastRequest, 4);
  std::map<std::string, int> n;
  for (int i = 0; i < 40; ++i) n[pool_->Choose(Prompt(i, i), {}, std::nullopt)->backend->name()]++;
  for (auto& [name, count] : n) EXPECT_LE(count, 14) << name;
  int total = 0;
  for (const BackendView& v : pool_->Views()) total += v.inflight;
  EXPECT_EQ(total, 40);
}

TEST_F(PoolTest, ExcludesReplicasAlreadyTried) {
  Make(Policy::kRoundRobin, 2);
  auto a = pool_->Choose(Prompt(1, 1), {}, std::nullopt);
  auto b = pool_->Choose(Prompt(1, 1), {a->backend->id()}, std::nullopt);
  ASSERT_TRUE(b);
  EXPECT_NE(a->backend, b->backend);
  EXPECT_FALSE(pool_->Choose(Prompt(1, 1), {a->backend->id(), b->backend->id()}, std::nullopt));
}

TEST_F(PoolTest, DiscoveryKeepsKnownReplicasAndDropsGoneOnes) {
  Make(Policy::kPrefix, 2);
  auto p = pool_->Choose(Prompt(1, 1), {}, std::nullopt);
  const std::string kept = p->backend->name();
  const int kept_port = p->backend->endpoint().port;
  const int other_port = kept_port == 8000 ? 8001 : 8000;
  auto left = pool_->SetEndpoints({At(kept_port), At(9000)});
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].port, other_port);
  EXPECT_EQ(pool_->size(), 2u);
  // The kept replica is still probed ready and still has the prompt in its index.
  auto again = pool_->Choose(Prompt(1, 2), {}, std::nullopt);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->backend->name(), kept);
  EXPECT_EQ(again->matched_blocks, 4u);
  pool_->Release(*p->backend, Outcome::kSuccess);
  // Terminating replicas take nothing new.
  pool_->SetEndpoints({{Endpoint{"10.0.0.1", kept_port}, true, true, "pod-a"}, At(9000)});
  EXPECT_EQ(pool_->routable(), 0);  // 9000 was never probed
}

TEST_F(PoolTest, ScrapesSizeTheIndexAndTheBlockSize) {
  Make(Policy::kPrefix, 1);
  auto b = pool_->Backends()[0];
  ReplicaLoad load;
  load.waiting = 0;
  load.running = 0;
  load.num_blocks = 3;
  load.block_size = 16;
  pool_->OnScrape(*b, load, false);
  for (int g = 0; g < 5; ++g)
    pool_->Release(*pool_->Choose(Prompt(g, g), {}, {})->backend, Outcome::kSuccess);
  EXPECT_EQ(pool_->Views()[0].index_blocks, 3u);
  // Another block size: the old hashes match nothing, the index starts over.
  load.block_size = 32;
  pool_->OnScrape(*b, load, false);
  EXPECT_EQ(pool_->block_size(), 32);
  EXPECT_EQ(pool_->Views()[0].index_blocks, 0u);
  auto p = pool_->Choose(Prompt(1, 1), {}, {});
  EXPECT_EQ(p->prompt_blocks, 2u);
  // A scrape that cannot connect takes the replica out at once.
  pool_->OnScrape(*b, std::nullopt, /*connect_failed=*/true);
  EXPECT_EQ(pool_->routable(), 0);
}

TEST_F(PoolTest, FailuresEjectButNeverMoreThanHalf) {
  Make(Policy::kRoundRobin, 2);
  auto a = pool_->Choose(Prompt(1, 1), {}, {});
  auto b = pool_->Choose(Prompt(1, 1), {a->backend->id()}, {});
  EXPECT_TRUE(pool_->Release(*a->backend, Outcome::kConnectError));
  EXPECT_FALSE(pool_->Release(*b->backend, Outcome::kConnectError));  // would be both
  EXPECT_EQ(pool_->routable(), 1);
}

TEST_F(PoolTest, RoutableCallbackFiresWhenAReplicaComesBack) {
  pool_ = std::make_unique<BackendPool>(PoolOptions{});
  int fired = 0;
  pool_->OnRoutable([&] { ++fired; });
  pool_->SetEndpoints({At(1)});
  pool_->OnProbe(*pool_->Backends()[0], false);
  EXPECT_EQ(fired, 0);
  pool_->OnProbe(*pool_->Backends()[0], true);
  EXPECT_EQ(fired, 1);
  pool_->OnProbe(*pool_->Backends()[0], true);
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace kinfer::router
