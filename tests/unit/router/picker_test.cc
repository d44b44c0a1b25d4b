// The routing policies against their definitions: round robin cycles; power of two choices
// never picks the busiest of three; rendezvous hashing keeps keys where they were when a
// replica leaves (only its keys move) and bounds any replica's share; the prefix policy
// follows the prefix, spreads cold prompts, and drops the bonus of a hot replica.
#include "router/picker.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

namespace kinfer::router {
namespace {

PickRequest Blocks(size_t n) {
  PickRequest r;
  r.prompt_blocks = n;
  return r;
}

PickRequest Key(uint64_t k) {
  PickRequest r;
  r.session = k;
  return r;
}

PickerOptions Seeded(uint64_t seed, double session_epsilon = 0.25) {
  PickerOptions o;
  o.seed = seed;
  o.session_epsilon = session_epsilon;
  return o;
}

std::vector<Candidate> Idle(int n) {
  std::vector<Candidate> c(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) c[static_cast<size_t>(i)].id = 1000 + static_cast<uint64_t>(i);
  return c;
}

TEST(Picker, ParsesPolicyNames) {
  for (const char* n : {"round_robin", "least_request", "session", "prefix"}) {
    auto p = ParsePolicy(n);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(PolicyName(*p), n);
  }
  EXPECT_FALSE(ParsePolicy("random").ok());
}

TEST(Picker, RoundRobinCycles) {
  auto p = Picker::Create(Policy::kRoundRobin);
  auto c = Idle(3);
  std::vector<size_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(p->Pick(c, {}));
  EXPECT_EQ(got, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(Picker, LeastRequestNeverPicksTheBusiestOfThree) {
  auto p = Picker::Create(Policy::kLeastRequest, Seeded(7));
  auto c = Idle(3);
  c[0].inflight = 5;
  c[1].inflight = 1;
  c[2].inflight = 2;
  std::map<size_t, int> n;
  for (int i = 0; i < 3000; ++i) n[p->Pick(c, {})]++;
  EXPECT_EQ(n[0], 0);
  // 1 wins whenever it is drawn (2/3 of draws); 2 only against 0 (1/3).
  EXPECT_NEAR(n[1] / 3000.0, 2.0 / 3, 0.05);
  EXPECT_NEAR(n[2] / 3000.0, 1.0 / 3, 0.05);
}

TEST(Picker, LeastRequestCountsReplicaQueuesAndAvoidsStaleMetrics) {
  auto p = Picker::Create(Policy::kLeastRequest, Seeded(3));
  auto c = Idle(2);
  c[0].waiting = 10;  // another router's load
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p->Pick(c, {}), 1u);
  c[0].waiting = 0;
  c[1].fresh = false;  // saturated until its metrics come back
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p->Pick(c, {}), 0u);
}

TEST(Picker, SessionSticksAndOnlyTheLeavingReplicasKeysMove) {
  auto p = Picker::Create(Policy::kSession, Seeded(1, 100));
  auto c = Idle(4);
  std::map<uint64_t, uint64_t> before;
  for (uint64_t key = 0; key < 2000; ++key) {
    uint64_t id = c[p->Pick(c, Key(key * 7919))].id;
    EXPECT_EQ(c[p->Pick(c, Key(key * 7919))].id, id);  // sticky
    before[key] = id;
  }
  std::map<uint64_t, int> share;
  for (auto& [k, id] : before) share[id]++;
  for (auto& [id, n] : share) EXPECT_NEAR(n, 500, 120) << id;  // spread evenly
  auto gone = c;
  gone.erase(gone.begin() + 2);
  int moved = 0;
  for (uint64_t key = 0; key < 2000; ++key) {
    uint64_t id = gone[p->Pick(gone, Key(key * 7919))].id;
    if (before[key] != c[2].id) {
      EXPECT_EQ(id, before[key]);
    } else {
      ++moved;
    }
  }
  EXPECT_EQ(moved, share[c[2].id]);
}

TEST(Picker, SessionBoundsTheLoadOfOneReplica) {
  auto p = Picker::Create(Policy::kSession, Seeded(1));
  auto c = Idle(4);
  const size_t home = p->Pick(c, Key(42));
  c[home].inflight = 10;  // (1 + 0.25) * 11 / 4 = 3.4 -> cap 4: full
  size_t other = p->Pick(c, Key(42));
  EXPECT_NE(other, home);
  EXPECT_EQ(p->Pick(c, Key(42)), other);  // the key's second choice, consistently
  c[home].inflight = 0;
  EXPECT_EQ(p->Pick(c, Key(42)), home);
  // No key: least loaded.
  c = Idle(2);
  c[0].inflight = 3;
  EXPECT_EQ(p->Pick(c, {}), 1u);
}

TEST(Picker, PrefixFollowsThePrefixUnlessLoadOutweighsIt) {
  auto p = Picker::Create(Policy::kPrefix, Seeded(5));
  auto c = Idle(3);
  c[2].matched_blocks = 8;
  EXPECT_EQ(p->Pick(c, Blocks(10)), 2u);
  c[2].inflight = 2;
  c[0].inflight = 1;
  c[1].inflight = 1;
  EXPECT_EQ(p->Pick(c, Blocks(10)), 2u);  // 2 + 1 <= 1.5 * (4/3 + 1)
  c[2].inflight = 4;
  EXPECT_NE(p->Pick(c, Blocks(10)), 2u);  // hot: 5 > 1.5 * (2 + 1)
  // A small match does not beat a big load difference.
  c = Idle(2);
  c[0].matched_blocks = 1;
  c[0].inflight = 3;
  c[0].kv_usage = 0.9;
  EXPECT_EQ(p->Pick(c, Blocks(100)), 1u);
}

TEST(Picker, PrefixGathersAnAdaptersRequestsWhereItIsLoaded) {
  auto p = Picker::Create(Policy::kPrefix, Seeded(2));
  auto c = Idle(3);
  c[0].inflight = 1;
  c[2].inflight = 1;
  c[1].adapter_loaded = true;
  c[1].inflight = 2;  // busier, but loading the adapter elsewhere costs more
  for (int i = 0; i < 20; ++i) EXPECT_EQ(p->Pick(c, Blocks(4)), 1u);
  c[1].inflight = 6;  // hot: the others may load it too
  EXPECT_NE(p->Pick(c, Blocks(4)), 1u);
}

TEST(Picker, PrefixSpreadsColdPromptsAndBreaksTiesAtRandom) {
  auto p = Picker::Create(Policy::kPrefix, Seeded(9));
  auto c = Idle(4);
  std::set<size_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(p->Pick(c, Blocks(4)));
  EXPECT_EQ(seen.size(), 4u);
  c[1].inflight = 1;
  c[2].inflight = 1;
  c[3].inflight = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(p->Pick(c, Blocks(4)), 0u);
}

// One hot prefix: every request shares it. Picks count at once (as the pool does), requests
// finish in arrival order after a while. The busiest replica stays within 1.5x of the mean.
TEST(Picker, OneHotPrefixSpreadsWithinOneAndAHalfOfTheMean) {
  auto p = Picker::Create(Policy::kPrefix, Seeded(11));
  auto c = Idle(4);
  std::vector<size_t> running;
  double max_sum = 0, mean_sum = 0;
  for (int step = 0; step < 400; ++step) {
    // Whoever has served the prefix before matches it fully.
    const size_t i = p->Pick(c, Blocks(64));
    c[i].inflight++;
    c[i].matched_blocks = 64;
    running.push_back(i);
    if (running.size() > 24) {  // steady state: 24 in flight
      c[running.front()].inflight--;
      running.erase(running.begin());
    }
    if (step >= 100) {
      int mx = 0, sum = 0;
      for (const Candidate& x : c) {
        mx = std::max(mx, x.inflight);
        sum += x.inflight;
      }
      max_sum += mx;
      mean_sum += sum / 4.0;
    }
  }
  EXPECT_LE(max_sum / mean_sum, 1.5);
}

}  // namespace
}  // namespace kinfer::router
