// Attention of query heads over a paged KV cache (blocks found through a block table, as the
// engine's KV cache manager hands them out).
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// Where one layer's keys and values of one KV head live in a paged cache: block b's keys are
// at k_base + block_table[b] * block_stride + head_offset (elements of f16 or f32), slot s of
// the block at + s * head_dim.
struct PagedKvView {
  const void* k_base = nullptr;
  const void* v_base = nullptr;
  int64_t block_stride = 0;  // elements from one physical block to the next
  int64_t head_offset = 0;   // elements from a block's start to this head's first slot
  int64_t block_size = 0;
  const int32_t* block_table = nullptr;
  bool f16 = true;
};

// out[0..head_dim) = softmax(scale * q . K[lo..hi]) . V[lo..hi] over positions lo..hi inclusive
// of the paged cache. `scores` needs hi + 1 floats of scratch. The arithmetic depends only on q,
// the cached values, lo and hi.
void AttendHead(const float* q, int64_t head_dim, const PagedKvView& kv, int64_t lo, int64_t hi,
                float scale, float* scores, float* out);

// AttendHead for `heads` query heads that share the KV head of `kv` (grouped-query attention),
// reading the cache once for all of them: q and out hold the heads one after another
// (heads * head_dim floats), `scores` needs heads * (hi + 1) floats. Each head's output is bit
// for bit what AttendHead gives it alone.
void AttendHeads(const float* q, int64_t heads, int64_t head_dim, const PagedKvView& kv, int64_t lo,
                 int64_t hi, float scale, float* scores, float* out);

}  // namespace kinfer::kernels
