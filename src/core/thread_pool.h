// A fixed pool of compute threads for the kernels. The calling thread works too (it is thread 0).
// A parallel region is cut into a fixed set of chunks (fixed by the sizes alone) that the threads
// claim from an atomic counter; the region ends when every chunk is done, not when every thread
// has arrived, so a worker that the OS has preempted (a shared node, a CPU-limited pod) delays
// the region by at most the chunk it holds instead of its whole share. Waits spin, then sleep on
// a futex. A region costs a few microseconds and allocates nothing.
//
// Which thread runs a chunk varies from run to run; what a chunk computes must not depend on it.
//
//   ThreadPool pool(4);
//   pool.Run([&](int thread, int num_threads) { ... my share ... });
//   pool.ParallelFor(rows, [&](int64_t begin, int64_t end) { ... rows [begin, end) ... });
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace kinfer {

class ThreadPool {
 public:
  // `num_threads` counts the caller; 0 means one per hardware thread.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(index, num_threads) once for every index in [0, num_threads), each on some pool
  // thread, and returns when all have finished. Only one thread may call Run or ParallelFor at
  // a time, and not from inside a task.
  template <typename F>
  void Run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    RunChunks(
        [](void* ctx, int64_t chunk, int64_t chunks) {
          (*static_cast<Fn*>(ctx))(static_cast<int>(chunk), static_cast<int>(chunks));
        },
        const_cast<void*>(static_cast<const void*>(&fn)), num_threads_);
  }

  // How ParallelFor cuts a range (ChunkSplit says exactly).
  enum class Split {
    // About four equal chunks a thread: a preempted thread delays the region by one small chunk.
    kEven,
    // One large head chunk a thread, then a tail of small chunks: fewer claims and less spin at
    // the end of short, bandwidth-bound regions such as one token's matmuls.
    kHeadTail,
  };

  // Calls fn(begin, end) over contiguous ranges that cover [0, n) once, each aligned to `grain`
  // items. The ranges (ChunkSplit) depend only on n, grain, the split and the number of
  // threads, never on timing.
  template <typename F>
  void ParallelFor(int64_t n, F&& fn, int64_t grain = 1, Split how = Split::kEven) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (num_threads_ == 1 || n <= grain) {
      fn(int64_t{0}, n);
      return;
    }
    const ChunkSplit split(n, grain, num_threads_, how);
    auto range = [&](int64_t c) {
      const auto [begin, end] = split.Range(c);
      if (begin < end) fn(begin, end);
    };
    using R = decltype(range);
    RunChunks([](void* ctx, int64_t c, int64_t /*chunks*/) { (*static_cast<R*>(ctx))(c); }, &range,
              split.chunks());
  }

  // How ParallelFor cuts [0, n) into chunks that threads claim in order. kHeadTail on a long
  // range first gives each thread one big head chunk (its share of most of the work), then a
  // tail of chunks that shrink down to one grain: a thread that started late or streams slower
  // leaves the others at most one grain of work to wait on. kEven, or a short range, gives about
  // four equal chunks a thread.
  class ChunkSplit {
   public:
    ChunkSplit(int64_t n, int64_t grain, int threads, Split how);
    int64_t chunks() const { return head_chunks_ + tail_chunks_; }
    // Items [begin, end) of chunk c, in [0, chunks()); empty for none.
    std::pair<int64_t, int64_t> Range(int64_t c) const {
      int64_t b, e;
      if (c < head_chunks_) {
        b = head_grains_ * c / head_chunks_;
        e = head_grains_ * (c + 1) / head_chunks_;
      } else if (head_chunks_ > 0) {
        const int64_t k = c - head_chunks_;
        b = k == 0 ? head_grains_ : tail_ends_[static_cast<size_t>(k - 1)];
        e = tail_ends_[static_cast<size_t>(k)];
      } else {  // equal chunks
        b = grains_ * c / tail_chunks_;
        e = grains_ * (c + 1) / tail_chunks_;
      }
      return {b * grain_, e * grain_ < n_ ? e * grain_ : n_};
    }

    // Most tail chunks kHeadTail makes (more threads get a coarser tail).
    static constexpr size_t kMaxTailChunks = 96;

   private:
    int64_t n_, grain_, grains_;
    int64_t head_grains_ = 0, head_chunks_ = 0, tail_chunks_ = 0;
    std::array<int64_t, kMaxTailChunks> tail_ends_;  // after heads: where each tail chunk ends
  };

 private:
  using ChunkFn = void (*)(void* ctx, int64_t chunk, int64_t chunks);

  void RunChunks(ChunkFn fn, void* ctx, int64_t chunks);
  // Claims and runs chunks of the open job until none is left.
  void Drain();
  void WorkerLoop(int index);

  int num_threads_;
  std::vector<std::thread> workers_;

  // The current job; written by the caller before `open_` and `generation_` are set, and left
  // alone until every worker that entered the job has left it (`in_job_` back to 0).
  ChunkFn job_fn_ = nullptr;
  void* job_ctx_ = nullptr;
  int64_t job_chunks_ = 0;
  std::atomic<uint64_t> job_generation_{0};

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int64_t> next_chunk_{0};
  alignas(64) std::atomic<int64_t> done_chunks_{0};
  alignas(64) std::atomic<int> in_job_{0};
  std::atomic<bool> open_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
};

// Number of threads to use when the user gives none: the cores this process may run on.
int DefaultThreadCount();

}  // namespace kinfer
