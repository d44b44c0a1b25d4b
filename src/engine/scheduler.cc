#include "engine/scheduler.h"

#include <algorithm>

#include "core/status.h"
#include "engine/block_hash.h"
#include "engine/engine_internal.h"

namespace kinfer::engine {
namespace {

bool Before(const Sequence* a, const Sequence* b) {
  if (a->priority != b->priority) return a->priority < b->priority;
  return a->arrival_order < b->arrival_order;
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager& kv)
    : config_(config), kv_(kv) {}

void Scheduler::AddWaiting(Sequence* seq) {
  seq->status = SequenceStatus::kWaiting;
  auto pos = std::upper_bound(waiting_.begin(), waiting_.end(), seq, Before);
  waiting_.insert(pos, seq);
}

void Scheduler::AddRunning(Sequence* seq) {
  seq->status = SequenceStatus::kRunning;
  running_.push_back(seq);
}

void Scheduler::Remove(Sequence* seq) {
  auto r = std::find(running_.begin(), running_.end(), seq);
  if (r != running_.end()) running_.erase(r);
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) waiting_.erase(w);
}

size_t Scheduler::PickVictim() const {
  size_t victim = 0;
  for (size_t i = 1; i < running_.size(); ++i) {
    if (Before(running_[victim], running_[i])) victim = i;
  }
  return victim;
}

void Scheduler::Preempt(size_t index, SchedulerOutput& out, int32_t& budget) {
  Sequence* v = running_[index];
  auto it = std::find_if(out.scheduled.begin(), out.scheduled.end(),
                         [&](const ScheduledSequence& s) { return s.seq == v; });
  if (it != out.scheduled.end()) {
    budget += it->num_tokens;
    out.num_tokens -= it->num_tokens;
    out.scheduled.erase(it);
  }
  kv_.Free(v->id);
  v->num_computed = 0;
  running_.erase(running_.begin() + static_cast<long>(index));
  AddWaiting(v);
  out.preempted.push_back(v);
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int32_t budget = config_.max_num_batched_tokens;

  // Running sequences first, in admission order.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    const int32_t n = std::min(seq->remaining(), budget);
    KINFER_CHECK(n > 0);
    bool placed = false;
    while (true) {
      if (kv_.Allocate(seq->id, seq->num_computed + n)) {
        placed = true;
        break;
      }
      size_t victim = PickVictim();
      bool self = running_[victim] == seq;
      Preempt(victim, out, budget);
      if (self) break;
      if (victim < i) --i;  // the list shifted under us
    }
    if (placed) {
      out.scheduled.push_back({seq, n});
      out.num_tokens += n;
      budget -= n;
      ++i;
    }
  }

  // The adapters running now: a waiting sequence of another one needs a free adapter slot.
  std::vector<const model::LoraAdapter*>& loras = loras_scratch_;
  loras.clear();
  for (const Sequence* s : running_) {
    const model::LoraAdapter* l = SequenceLora(*s);
    if (l && std::find(loras.begin(), loras.end(), l) == loras.end()) loras.push_back(l);
  }

  // Then waiting prompts, unless this step had to preempt (memory is short: let it drain).
  size_t w = 0;
  while (out.preempted.empty() && w < waiting_.size() && budget > 0 &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_[w];
    const model::LoraAdapter* lora = SequenceLora(*seq);
    const bool new_lora = lora && std::find(loras.begin(), loras.end(), lora) == loras.end();
    if (new_lora && config_.max_loras > 0 &&
        static_cast<int32_t>(loras.size()) >= config_.max_loras) {
      ++w;  // its adapter has no slot this step: the next waiting request may
      continue;
    }
    PrefixHit cached;
    const bool lookup = seq->num_computed == 0 && PrefixCachingAllowed(*seq);
    if (lookup) {
      cached = kv_.FindCachedPrefix(seq->tokens, RequestExtraHash(*seq));
    }
    const int32_t cached_tokens = static_cast<int32_t>(cached.size()) * kv_.block_size();
    const int32_t n = std::min(static_cast<int32_t>(seq->tokens.size()) - cached_tokens, budget);
    if (!kv_.Allocate(seq->id, cached_tokens + n, cached)) break;
    if (lookup) {
      out.prefix_queries += static_cast<int64_t>(seq->tokens.size());
      out.prefix_hits += cached_tokens;
      NoteCachedTokens(*seq, cached_tokens);
    }
    seq->num_computed = cached_tokens;
    waiting_.erase(waiting_.begin() + static_cast<long>(w));
    if (new_lora) loras.push_back(lora);
    seq->status = SequenceStatus::kRunning;
    running_.push_back(seq);
    out.scheduled.push_back({seq, n});
    out.num_tokens += n;
    budget -= n;
  }
  return out;
}

}  // namespace kinfer::engine
