// Paged attention on the GPU for a flattened batch of prefill chunks and decode tokens: each
// token attends to positions lo..pos of its own sequence, read through the block table, with
// grouped-query heads sharing a KV head (one block per token and KV head reads that head's
// cache once for the whole group).
//
// Flash-decoding: a token's positions are cut into up to 16 splits of whole 64-position tiles,
// attended by separate blocks (so a lone decode token still spreads over the GPU), each with an
// online softmax in f32 in position order; a second kernel merges the splits in split order.
// The split sizes depend only on the token's own number of positions, so its output depends
// only on its query, its sequence's cache and lo..pos, never on the batch. Against
// kernels::AttendHeads (which takes the max over all positions first) the results differ by
// f32 rounding only (relative 1e-6 on typical inputs).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/layer_ops.h"

namespace kinfer::kernels::cuda {

struct AttentionParams {
  const float* q = nullptr;   // [T, heads, head_dim]
  uint16_t* out16 = nullptr;  // [T, heads * head_dim] f16 (the next matmul's input), or
  float* out32 = nullptr;     // the same in f32: exactly one of them is set
  int64_t heads = 0, kv_heads = 0, head_dim = 0;  // head_dim <= 256
  float scale = 1.0f;
  float* workspace = nullptr;  // AttentionWorkspaceBytes(T, heads, head_dim) of device memory
};

// Scratch the splits of T tokens need.
size_t AttentionWorkspaceBytes(int64_t T, int64_t heads, int64_t head_dim);

void PagedAttention(const AttentionParams& p, const TokenTables& tt, const PagedCache& cache,
                    int64_t T, cudaStream_t stream);

}  // namespace kinfer::kernels::cuda
