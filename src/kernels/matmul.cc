// MatMul's entry points: the split of output rows over threads, and per weight the path that
// computes them (8-bit activations in matmul_q8.cc, f32 activations in matmul_f32.cc).
#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "core/status.h"
#include "kernels/internal/matmul_paths.h"
#include "kernels/quant.h"

namespace kinfer::kernels {

void MatMul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const MatMulJob job{&w, x, y};
  MatMulMany(std::span<const MatMulJob>(&job, 1), n_tokens, pool);
}

void MatMulMany(std::span<const MatMulJob> jobs, int64_t n_tokens, ThreadPool& pool) {
  constexpr size_t kMaxJobs = 4;
  KINFER_CHECK(jobs.size() <= kMaxJobs && "MatMulMany: too many jobs");
  if (n_tokens <= 0 || jobs.empty()) return;
  // Per job: whether it runs on 8-bit activations, and their buffers. Jobs that share x and
  // its width share one quantization (q/k/v, gate/up). The calling thread quantizes; workers
  // read through plain pointers (inside a task, a thread_local would name the worker's own).
  struct Act {
    bool q8 = false;
    const int8_t* qx = nullptr;
    const float* dx = nullptr;
    const int32_t* sx = nullptr;
  };
  thread_local std::vector<int8_t> qx_buf[kMaxJobs];
  thread_local std::vector<float> dx_buf[kMaxJobs];
  thread_local std::vector<int32_t> sx_buf[kMaxJobs];
  Act act[kMaxJobs];
  int64_t total_rows = 0, work = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const TensorView& w = *jobs[j].w;
    const int64_t in = w.cols();
    total_rows += w.rows();
    work += w.rows() * in * n_tokens;
    if (!MatMulUsesQ8Activations(w.dtype, in)) continue;
    act[j].q8 = true;
    bool shared = false;
    for (size_t i = 0; i < j && !shared; ++i) {
      if (act[i].q8 && jobs[i].x == jobs[j].x && jobs[i].w->cols() == in) {
        act[j] = act[i];
        shared = true;
      }
    }
    if (shared) continue;
    const size_t n = static_cast<size_t>(n_tokens * in), nb = n / kQK;
    if (qx_buf[j].size() < n) qx_buf[j].resize(n);
    if (dx_buf[j].size() < nb) dx_buf[j].resize(nb);
    if (sx_buf[j].size() < nb) sx_buf[j].resize(nb);
    internal::QuantizeQ8(jobs[j].x, n_tokens, in, qx_buf[j].data(), dx_buf[j].data(),
                         sx_buf[j].data());
    act[j].qx = qx_buf[j].data();
    act[j].dx = dx_buf[j].data();
    act[j].sx = sx_buf[j].data();
  }
  const internal::F32RowsFn f32_rows = internal::F32ActivationRows();
  const internal::Q8RowsFn q8_rows = internal::Q8ActivationRows();
  // Rows [begin, end) of the jobs' rows laid end to end.
  auto rows = [&](int64_t begin, int64_t end) {
    int64_t first = 0;
    for (size_t j = 0; j < jobs.size() && first < end; ++j) {
      const TensorView& w = *jobs[j].w;
      const int64_t lo = std::max(begin, first) - first;
      const int64_t hi = std::min(end, first + w.rows()) - first;
      if (lo < hi) {
        if (act[j].q8) {
          q8_rows(w, act[j].qx, act[j].dx, act[j].sx, n_tokens, jobs[j].y, lo, hi);
        } else {
          f32_rows(w, jobs[j].x, n_tokens, jobs[j].y, lo, hi);
        }
      }
      first += w.rows();
    }
  };
  // Below this many multiply-adds, waking the other threads costs more than it saves.
  constexpr int64_t kMinParallelWork = 1 << 15;
  if (work < kMinParallelWork || pool.num_threads() == 1) {
    rows(0, total_rows);
  } else {
    pool.ParallelFor(total_rows, rows, 16);
  }
}

}  // namespace kinfer::kernels
