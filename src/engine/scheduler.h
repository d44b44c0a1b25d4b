// Decides what runs in each engine step (vLLM v1's policy): every running sequence's next
// tokens first, then chunks of waiting prompts, within a token budget and a sequence cap.
// Prefill is always chunked. When KV blocks run out, the lowest-priority, newest running
// sequence is preempted: its blocks are freed and it waits at the front to be recomputed.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/kv_cache_manager.h"
#include "engine/sequence.h"

namespace kinfer::engine {

struct SchedulerConfig {
  // 256, not vLLM's 2048: on a CPU the matmuls reach their full rate by a few dozen tokens a
  // step, while a step's time grows with its tokens. With 2048, a burst of 16 128-token prompts
  // was one 1.7 s step that every stream waited for (and ~100 MiB more of workspace); with 256
  // they finish prefill a step or two apart (TTFT p50 0.65 s, same output tokens/s; Qwen2.5-0.5B
  // Q8_0, 2 threads), and a long prompt's chunks cost no measurable extra.
  int32_t max_num_batched_tokens = 256;
  int32_t max_num_seqs = 256;
  // Most distinct LoRA adapters among the running sequences (--max-loras); 0: no limit. A waiting
  // request whose adapter would exceed it is passed over, not the whole batch split: requests of
  // the adapters already running (and of the base) are admitted behind it.
  int32_t max_loras = 0;
};

struct ScheduledSequence {
  Sequence* seq;
  int32_t num_tokens;  // new tokens computed this step
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> scheduled;
  std::vector<Sequence*> preempted;
  int32_t num_tokens = 0;
  // Prefix-cache accounting for sequences admitted this step: tokens looked up and found.
  int64_t prefix_queries = 0;
  int64_t prefix_hits = 0;
  bool empty() const { return scheduled.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvCacheManager& kv);

  // Queues a new (or forked-but-unplaced) sequence, ordered by (priority, arrival).
  void AddWaiting(Sequence* seq);
  // Adds a sequence that already holds its blocks (a fork) straight to running.
  void AddRunning(Sequence* seq);
  // Forgets a finished or aborted sequence; the caller frees its blocks.
  void Remove(Sequence* seq);

  SchedulerOutput Schedule();

  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }

 private:
  // The running sequence to give up first: highest priority value, then newest.
  size_t PickVictim() const;
  void Preempt(size_t running_index, SchedulerOutput& out, int32_t& budget);

  SchedulerConfig config_;
  KvCacheManager& kv_;
  std::vector<Sequence*> running_;
  std::deque<Sequence*> waiting_;
  std::vector<const model::LoraAdapter*> loras_scratch_;
};

}  // namespace kinfer::engine
