#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <string>

#include "core/status.h"
#include "core/system_info.h"

namespace kinfer {
namespace {

// How long a thread spins before it sleeps on a futex. Long enough to catch the next kernel of
// the same forward pass, short enough not to burn a core between engine steps.
constexpr int kSpinIterations = 1 << 14;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

int DefaultThreadCount() {
  int n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  // A pod's CPU limit is a quota, not an affinity mask: more threads than it would only queue.
  if (auto limit = CgroupCpuLimit()) n = std::min(n, *limit);
  return n;
}

ThreadPool::ChunkSplit::ChunkSplit(int64_t n, int64_t grain, int threads, Split how)
    : n_(n), grain_(grain), grains_((n + grain - 1) / grain) {
  // kHeadTail: head chunks take 7/8 of the items; each tail chunk then takes 1/(4 threads) of
  // what is left, at least one grain, so the last chunks are single grains. Measured on
  // Llama-3.2-1B Q4_K_M decode at 2 threads (perf): the pool's spin was 5.3% of kernel time with
  // even chunks, 2.4-2.9% with 3/4 or 7/8 as heads and a tail of equal chunks. On Qwen2.5-0.5B
  // (region timestamps) equal tail chunks of 5 grains left one thread idle for 2.5 us at the end
  // of each gate/up region (median); shrinking ones, 0.5 us. Below 16 grains a thread, heads
  // would leave too few to cut.
  constexpr int64_t kHeadEighths = 7, kTailShareOfThreads = 4, kMinGrainsPerThread = 16;
  const int64_t p = threads;
  if (how == Split::kHeadTail && grains_ >= kMinGrainsPerThread * p) {
    head_chunks_ = p;
    head_grains_ = grains_ * kHeadEighths / 8;
    // Many threads on a long range would need more chunks than tail_ends_ holds: raise the
    // smallest chunk until they fit.
    for (int64_t min_grains = 1;; min_grains *= 2) {
      int64_t at = head_grains_, k = 0;
      while (at < grains_ && k < static_cast<int64_t>(kMaxTailChunks)) {
        const int64_t left = grains_ - at;
        at += std::min(left, std::max(min_grains, (left + kTailShareOfThreads * p - 1) /
                                                      (kTailShareOfThreads * p)));
        tail_ends_[static_cast<size_t>(k++)] = at;
      }
      if (at == grains_) {
        tail_chunks_ = k;
        break;
      }
    }
  } else {
    tail_chunks_ = std::min(grains_, 4 * p);
  }
}

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(num_threads > 0 ? num_threads : DefaultThreadCount()) {
  workers_.reserve(num_threads_ - 1);
  for (int i = 1; i < num_threads_; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
    std::string name = "kinfer-work-" + std::to_string(i);
    pthread_setname_np(workers_.back().native_handle(), name.c_str());
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Drain() {
  const int64_t chunks = job_chunks_;
  while (true) {
    int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= chunks) return;
    job_fn_(job_ctx_, c, chunks);
    if (done_chunks_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      done_chunks_.notify_one();
    }
  }
}

void ThreadPool::RunChunks(ChunkFn fn, void* ctx, int64_t chunks) {
  if (chunks <= 0) return;
  if (num_threads_ == 1 || chunks == 1) {
    for (int64_t c = 0; c < chunks; ++c) fn(ctx, c, chunks);
    return;
  }
  bool was_running = running_.exchange(true, std::memory_order_acquire);
  KINFER_CHECK(!was_running && "ThreadPool::Run is not reentrant");
  job_fn_ = fn;
  job_ctx_ = ctx;
  job_chunks_ = chunks;
  next_chunk_.store(0, std::memory_order_relaxed);
  done_chunks_.store(0, std::memory_order_relaxed);
  const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  job_generation_.store(gen, std::memory_order_relaxed);
  open_.store(true, std::memory_order_seq_cst);
  generation_.store(gen, std::memory_order_seq_cst);
  generation_.notify_all();

  Drain();

  int spins = 0;
  while (true) {
    int64_t done = done_chunks_.load(std::memory_order_acquire);
    if (done == chunks) break;
    if (++spins < kSpinIterations) {
      CpuRelax();
    } else {
      done_chunks_.wait(done, std::memory_order_acquire);
    }
  }
  // Close the job, then wait for workers still inside it (they find no chunk left and leave at
  // once) so that none touches `ctx` after we return. A worker that enters after the close sees
  // open_ == false and leaves without touching it (seq_cst on both sides: Dekker's pattern).
  open_.store(false, std::memory_order_seq_cst);
  for (int i = 0; in_job_.load(std::memory_order_seq_cst) != 0; ++i) {
    if (i < kSpinIterations) {
      CpuRelax();
    } else {
      std::this_thread::yield();  // a worker preempted between entering and leaving
    }
  }
  running_.store(false, std::memory_order_release);
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t gen;
    int spins = 0;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        CpuRelax();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    in_job_.fetch_add(1, std::memory_order_seq_cst);
    if (open_.load(std::memory_order_seq_cst) &&
        job_generation_.load(std::memory_order_relaxed) == gen) {
      Drain();
    }
    in_job_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

}  // namespace kinfer
