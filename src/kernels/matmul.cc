// MatMul's entry points: the split of output rows over threads, and per weight the path that
// computes them (8-bit activations in matmul_q8.cc and matmul_kquant.cc, f32 activations in
// matmul_f32.cc).
#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/status.h"
#include "kernels/internal/matmul_amx_int8.h"
#include "kernels/internal/matmul_paths.h"
#include "kernels/quant.h"
#include "kernels/vector_ops.h"

namespace kinfer::kernels {
namespace {

std::atomic<MatMulPrecision> g_precision{MatMulPrecision::kFast};

using ActKind = MatMulActivations;

ActKind ActivationsFor(DType t, int64_t cols) {
  if (g_precision.load(std::memory_order_relaxed) == MatMulPrecision::kExact) return ActKind::kF32;
  if (internal::UsesQ8Activations(t, cols)) return ActKind::kInt8;
  if (internal::UsesQ8KActivations(t, cols)) return ActKind::kInt8K;
  if (internal::UsesAmxBf16(t, cols)) return ActKind::kBf16;
  return ActKind::kF32;
}

}  // namespace

MatMulActivations MatMulActivationsFor(DType t, int64_t cols) { return ActivationsFor(t, cols); }

void SetMatMulPrecision(MatMulPrecision p) { g_precision.store(p, std::memory_order_relaxed); }

MatMulPrecision GetMatMulPrecision() { return g_precision.load(std::memory_order_relaxed); }

bool MatMulUsesQ8Activations(DType t, int64_t cols) {
  const ActKind k = ActivationsFor(t, cols);
  return k == ActKind::kInt8 || k == ActKind::kInt8K;
}

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
    ActKind kind = ActKind::kF32;
    const int8_t* qx = nullptr;
    const float* dx = nullptr;
    const int32_t* sx = nullptr;
    const uint16_t* xb = nullptr;  // kBf16
    float* y2 = nullptr;           // kInt8/kInt8K: outputs of the 2T virtual tokens
    const int8_t* at = nullptr;    // kInt8/kInt8K on AMX tiles: qx as the tiles read it
  };
  thread_local std::vector<int8_t> qx_buf[kMaxJobs];
  thread_local std::vector<float> dx_buf[kMaxJobs];
  thread_local std::vector<int32_t> sx_buf[kMaxJobs];
  thread_local std::vector<uint16_t> xb_buf[kMaxJobs];
  thread_local std::vector<float> y2_buf[kMaxJobs];
  thread_local std::vector<int8_t> at_buf[kMaxJobs];
  Act act[kMaxJobs];
  int64_t total_rows = 0, work = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const TensorView& w = *jobs[j].w;
    const int64_t in = w.cols();
    total_rows += w.rows();
    work += w.rows() * in * n_tokens;
    act[j].kind = ActivationsFor(w.dtype, in);
    if (act[j].kind == ActKind::kF32) continue;
    // 8-bit activations on AMX tiles write each token's output (AmxInt8KTokenRows,
    // AmxInt8Q8TokenRows), the rest each of its two virtual tokens' into y2.
    const bool k = act[j].kind == ActKind::kInt8K;
    const bool tiles = k ? internal::UseAmxInt8K(2 * n_tokens)
                         : act[j].kind == ActKind::kInt8 && internal::UseAmxInt8Q8(2 * n_tokens);
    if (act[j].kind != ActKind::kBf16 && !tiles) {  // each job's own virtual-token outputs
      const size_t n = static_cast<size_t>(2 * n_tokens * w.rows());
      if (y2_buf[j].size() < n) y2_buf[j].resize(n);
      act[j].y2 = y2_buf[j].data();
    }
    bool shared = false;
    for (size_t i = 0; i < j && !shared; ++i) {
      if (act[i].kind == act[j].kind && jobs[i].x == jobs[j].x && jobs[i].w->cols() == in) {
        float* y2 = act[j].y2;
        act[j] = act[i];
        act[j].y2 = y2;
        shared = true;
      }
    }
    if (shared) continue;
    if (act[j].kind == ActKind::kBf16) {
      const size_t n = internal::AmxActivationElements(n_tokens, in);
      if (xb_buf[j].size() < n) xb_buf[j].resize(n);
      internal::ToBf16Activations(jobs[j].x, n_tokens, in, xb_buf[j].data());
      act[j].xb = xb_buf[j].data();
      continue;
    }
    // Two 8-bit terms a token (internal/two_term.h): 2T virtual tokens.
    const size_t n = static_cast<size_t>(2 * n_tokens * in), nb = n / (k ? kQKK : kQK);
    const size_t ns = k ? nb * internal::kQ8KSums : nb;
    if (qx_buf[j].size() < n) qx_buf[j].resize(n);
    if (dx_buf[j].size() < nb) dx_buf[j].resize(nb);
    if (sx_buf[j].size() < ns) sx_buf[j].resize(ns);
    if (k) {
      internal::QuantizeQ8K(jobs[j].x, n_tokens, in, qx_buf[j].data(), dx_buf[j].data(),
                            sx_buf[j].data());
    } else {
      internal::QuantizeQ8(jobs[j].x, n_tokens, in, qx_buf[j].data(), dx_buf[j].data(),
                           sx_buf[j].data());
    }
    if (tiles) {
      at_buf[j].resize(k ? internal::AmxInt8KTileBytes(n_tokens, in)
                         : internal::AmxInt8Q8TileBytes(n_tokens, in));
      (k ? internal::AmxInt8KTiles : internal::AmxInt8Q8Tiles)(qx_buf[j].data(), n_tokens, in,
                                                               at_buf[j].data());
      act[j].at = at_buf[j].data();
    }
    act[j].qx = qx_buf[j].data();
    act[j].dx = dx_buf[j].data();
    act[j].sx = sx_buf[j].data();
  }
  const internal::F32RowsFn f32_rows = internal::F32ActivationRows();
  const internal::Q8RowsFn q8_rows = internal::Q8ActivationRows();
  const internal::Q8RowsFn q8k_rows = internal::Q8KActivationRows();
  // Rows [begin, end) of the jobs' rows laid end to end.
  auto rows = [&](int64_t begin, int64_t end) {
    int64_t first = 0;
    for (size_t j = 0; j < jobs.size() && first < end; ++j) {
      const TensorView& w = *jobs[j].w;
      const int64_t lo = std::max(begin, first) - first;
      const int64_t hi = std::min(end, first + w.rows()) - first;
      if (lo < hi) {
        if (act[j].at != nullptr) {
          // The tiles add each token's two terms' outputs themselves, as they store them.
          (act[j].kind == ActKind::kInt8K ? internal::AmxInt8KTokenRows
                                          : internal::AmxInt8Q8TokenRows)(
              w, act[j].at, act[j].dx, act[j].sx, n_tokens, jobs[j].y, lo, hi);
        } else if (act[j].kind == ActKind::kInt8 || act[j].kind == ActKind::kInt8K) {
          const internal::Q8RowsFn f = act[j].kind == ActKind::kInt8 ? q8_rows : q8k_rows;
          f(w, act[j].qx, act[j].dx, act[j].sx, 2 * n_tokens, act[j].y2, lo, hi);
          // A token's output: its first term's plus its second's (SIMD: the plain loop stays
          // scalar, as the compiler cannot rule out that y aliases y2).
          const int64_t O = w.rows();
          for (int64_t t = 0; t < n_tokens; ++t) {
            const float* a = act[j].y2 + (2 * t) * O + lo;
            Add(jobs[j].y + t * O + lo, a, a + O, hi - lo);
          }
        } else if (act[j].kind == ActKind::kBf16) {
          internal::AmxBf16Rows(w, act[j].xb, n_tokens, jobs[j].y, lo, hi);
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
    // A few tokens' matmul streams its weights once, in a region short enough that the spin at
    // its end shows; more tokens' regions are long and even chunks measured as fast.
    constexpr int64_t kHeadTailMaxTokens = 4;
    pool.ParallelFor(
        total_rows, rows, 16,
        n_tokens <= kHeadTailMaxTokens ? ThreadPool::Split::kHeadTail : ThreadPool::Split::kEven);
  }
}

}  // namespace kinfer::kernels
