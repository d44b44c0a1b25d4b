// Low-rank adapter (LoRA) products beside a base matmul, unmerged: for the batch rows that use an
// adapter, y += scale * B (A x). One call serves every adapter of a step: rows are grouped by
// adapter, each group computes its shrink (x A^T, `rank` values per row) and then its expand
// (those values times B^T, added to y).
//
//   kernels::LoraGroup groups[] = {{&adapter1_q, rows_of_adapter1}, {&adapter2_q, rows_of_2}};
//   kernels::MatMul(wq, x, T, q, pool);                   // the base projection
//   kernels::LoraAdd(groups, x, hidden, q, q_dim, scratch, pool);
//
// Batch invariance (ops.h): what is added to a row depends only on that row's input and its own
// adapter, never on the other groups, the other rows of its group, or the threads.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kinfer::kernels {

// One adapted projection of one adapter: W' = W + scale * B A, with W [out, in].
struct LoraMatrices {
  // A: [rank, in]; bt: B transposed, [rank, out]: the expansion then reads contiguous output
  // features. Each is F32, F16 or BF16 (computed in f32 after an exact widening).
  TensorView a, bt;
  float scale = 0;  // lora_alpha / rank, or lora_alpha / sqrt(rank) (rsLoRA)

  bool empty() const { return a.empty(); }
  int64_t rank() const { return a.ndim == 2 ? a.shape[0] : 0; }
};

// The batch rows that use one adapter's matrices.
struct LoraGroup {
  const LoraMatrices* m = nullptr;
  std::span<const int32_t> rows;  // row indices into x and y, each at most once in a call
};

// Whether a LoraMatrices can be computed: 2-D A [rank, in] and bt [rank, out] in F32/F16/BF16.
bool LoraShapeOk(const LoraMatrices& m, int64_t in, int64_t out);

// For every group g and each of its rows t:
//   h[j] = sum_i A[j, i] * x[t * in + i]                  (j < rank; one vector accumulator
//                                                           over i in order, lanes summed in a
//                                                           fixed tree, then the scalar tail)
//   y[t * out + o] += scale * (sum_j h[j] * B[o, j])      (fused multiply-adds over j in order)
// `scratch` holds sum over groups of rows * rank floats. Rows not in any group are untouched.
void LoraAdd(std::span<const LoraGroup> groups, const float* x, int64_t in, float* y, int64_t out,
             float* scratch, ThreadPool& pool);

// Scratch floats LoraAdd needs for `groups`.
int64_t LoraScratchSize(std::span<const LoraGroup> groups);

}  // namespace kinfer::kernels
