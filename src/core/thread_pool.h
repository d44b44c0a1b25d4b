// A fixed pool of compute threads for the kernels. The calling thread works too (it is thread 0),
// work is split statically, and the threads meet at a spin-then-sleep barrier, so a parallel
// region costs a few microseconds and allocates nothing.
//
//   ThreadPool pool(4);
//   pool.Run([&](int thread, int num_threads) { ... my share ... });
//   pool.ParallelFor(rows, [&](int64_t begin, int64_t end) { ... rows [begin, end) ... });
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
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

  // Runs fn(thread_index, num_threads) once on every thread and returns when all have finished.
  // Only one thread may call Run at a time, and not from inside a task.
  template <typename F>
  void Run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    RunImpl(
        [](void* ctx, int thread, int n) { (*static_cast<Fn*>(ctx))(thread, n); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into one contiguous range per thread, aligned to `grain` items, and calls
  // fn(begin, end) for each non-empty range. The split depends only on n, grain and the number
  // of threads, so results never depend on timing.
  template <typename F>
  void ParallelFor(int64_t n, F&& fn, int64_t grain = 1) {
    if (n <= 0) return;
    if (num_threads_ == 1 || n <= grain) {
      fn(int64_t{0}, n);
      return;
    }
    Run([&](int t, int nt) {
      int64_t chunks = (n + grain - 1) / grain;
      int64_t begin = chunks * t / nt * grain;
      int64_t end = chunks * (t + 1) / nt * grain;
      if (end > n) end = n;
      if (begin < end) fn(begin, end);
    });
  }

 private:
  using Trampoline = void (*)(void* ctx, int thread, int num_threads);

  void RunImpl(Trampoline fn, void* ctx);
  void WorkerLoop(int index);

  int num_threads_;
  std::vector<std::thread> workers_;

  // The current job; written by the caller before `generation_` is bumped.
  Trampoline job_fn_ = nullptr;
  void* job_ctx_ = nullptr;

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
};

// Number of threads to use when the user gives none: the cores this process may run on.
int DefaultThreadCount();

}  // namespace kinfer
