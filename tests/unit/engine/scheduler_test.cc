// Scheduler: decodes before prefills, the token budget and sequence cap, chunked prefill,
// priorities, and preempting the newest lowest-priority sequence when blocks run out.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include "engine/engine_internal.h"

namespace kinfer::engine {
namespace {

struct Fixture {
  KvCacheManager kv;
  Scheduler sched;
  std::vector<std::unique_ptr<RequestState>> requests;
  Fixture(int32_t blocks, SchedulerConfig cfg) : kv(blocks, 4, true, nullptr), sched(cfg, kv) {}

  Sequence* Add(int32_t prompt_len, int32_t priority = 0) {
    auto rs = std::make_unique<RequestState>();
    rs->request.prompt_tokens.assign(static_cast<size_t>(prompt_len), 7);
    rs->request.priority = priority;
    auto seq = std::make_unique<Sequence>();
    seq->id = requests.size() + 1;
    seq->request = rs.get();
    seq->tokens = rs->request.prompt_tokens;
    seq->prompt_len = prompt_len;
    seq->priority = priority;
    seq->arrival_order = requests.size();
    Sequence* raw = seq.get();
    rs->seqs.push_back(std::move(seq));
    requests.push_back(std::move(rs));
    sched.AddWaiting(raw);
    return raw;
  }
  // Marks a step's work as computed and appends a sampled token to finished prefills.
  void Complete(const SchedulerOutput& out) {
    for (const auto& s : out.scheduled) {
      s.seq->num_computed += s.num_tokens;
      if (s.seq->num_computed == static_cast<int32_t>(s.seq->tokens.size()))
        s.seq->tokens.push_back(1);
    }
  }
};

TEST(Scheduler, ChunksPrefillWithinTheTokenBudget) {
  Fixture f(64, {.max_num_batched_tokens = 10, .max_num_seqs = 8});
  Sequence* a = f.Add(25);
  auto out = f.sched.Schedule();
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].num_tokens, 10);
  f.Complete(out);
  Sequence* b = f.Add(3);
  out = f.sched.Schedule();  // running a continues first (10), nothing left for b
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].seq, a);
  f.Complete(out);
  out = f.sched.Schedule();  // a's last 5, then b's 3
  ASSERT_EQ(out.scheduled.size(), 2u);
  EXPECT_EQ(out.scheduled[0].num_tokens, 5);
  EXPECT_EQ(out.scheduled[1].seq, b);
  EXPECT_EQ(out.num_tokens, 8);
}

TEST(Scheduler, RespectsTheSequenceCapAndPriorities) {
  Fixture f(64, {.max_num_batched_tokens = 100, .max_num_seqs = 2});
  f.Add(4, 5);
  Sequence* urgent = f.Add(4, -1);
  Sequence* normal = f.Add(4, 0);
  auto out = f.sched.Schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  EXPECT_EQ(out.scheduled[0].seq, urgent);
  EXPECT_EQ(out.scheduled[1].seq, normal);
  EXPECT_EQ(f.sched.num_waiting(), 1u);
}

TEST(Scheduler, PreemptsTheNewestWhenBlocksRunOut) {
  Fixture f(4, {.max_num_batched_tokens = 100, .max_num_seqs = 8});
  Sequence* a = f.Add(4);  // 1 block now, 2 after the first decode
  Sequence* b = f.Add(4);
  auto out = f.sched.Schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  f.Complete(out);  // each has 5 tokens, needs 2 blocks: 4 in total, fits
  out = f.sched.Schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  f.Complete(out);
  for (int i = 0; i < 3; ++i) {  // grow to 8 tokens: still 2 blocks each
    out = f.sched.Schedule();
    f.Complete(out);
  }
  // a needs a third block at 9 tokens: b, the newest, is preempted.
  out = f.sched.Schedule();
  ASSERT_EQ(out.preempted.size(), 1u);
  EXPECT_EQ(out.preempted[0], b);
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_EQ(b->status, SequenceStatus::kWaiting);
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].seq, a);
  EXPECT_EQ(f.sched.waiting().front(), b);
}

}  // namespace
}  // namespace kinfer::engine
