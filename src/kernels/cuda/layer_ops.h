// The decoder's per-token GPU kernels besides matmul and attention: embedding lookup, RMSNorm
// into the f16 input of the next matmul, SiLU-gate, and the fused step between the q/k/v
// projections and attention (bias, QK-norm, rotary embedding, writing K and V into the paged
// cache). Each computes a token's values from that token's inputs alone, in the order and with
// the roundings of the CPU kernels in kernels/ops.h (sums of squares in f64, no fused
// multiply-adds where the CPU has none), so results match the CPU to f32 rounding.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_matrix.h"

namespace kinfer::kernels::cuda {

// x[t * cols + i] = row tokens[t] of `table`, in f32.
void EmbedRows(const DeviceMatrix& table, const int32_t* tokens, int64_t n, float* x,
               cudaStream_t stream);

// For r < n_rows, with src = rows ? rows[r] : r: out[r] = RmsNorm(x[src], weight) over `dim`
// (kernels::RmsNorm), written as f16 into out16 and, when out32 is not null, as f32 too.
void RmsNormRows(const float* x, const int32_t* rows, int64_t n_rows, int64_t dim,
                 const float* weight, float eps, uint16_t* out16, float* out32,
                 cudaStream_t stream);

// out[i] = f16(silu(gate[i]) * up[i]) for i < n.
void SiluMul(const float* gate, const float* up, int64_t n, uint16_t* out, cudaStream_t stream);

// Where one layer's keys or values live in the paged cache: block b's at
// base + b * block_stride elements; head h, slot s of a block at + (h * block_size + s) * head_dim.
struct PagedCache {
  void* keys = nullptr;
  void* values = nullptr;
  int64_t block_stride = 0;
  int64_t block_size = 0;
  bool f16 = true;  // else f32
};

// Per-token positions and block tables of a batch, in device memory.
struct TokenTables {
  const int32_t* pos = nullptr;        // [T] position of each token
  const int32_t* lo = nullptr;         // [T] first position it attends to (sliding window)
  const int32_t* table_off = nullptr;  // [T] where its sequence's block table starts in tables
  const int32_t* tables = nullptr;     // every sequence's block table, end to end
};

struct QkvParams {
  float* q = nullptr;         // [T, heads * head_dim], rotated in place
  float* k = nullptr;         // [T, kv_heads * head_dim]
  float* v = nullptr;         // [T, kv_heads * head_dim]
  const float* bq = nullptr;  // biases, or null
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* q_norm = nullptr;  // [head_dim] QK-norm weights (Qwen3), or null
  const float* k_norm = nullptr;
  float eps = 1e-6f;
  const float* cos = nullptr;  // [positions, rot / 2]
  const float* sin = nullptr;
  int64_t rot = 0;  // rotated dims of each head
  bool interleaved = false;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
};

// Bias, QK-norm and RoPE on q and k (decoder.cc's order), then K and V of each token into its
// slot of the cache.
void QkvRopeStore(const QkvParams& p, const TokenTables& tt, const PagedCache& cache, int64_t T,
                  cudaStream_t stream);

}  // namespace kinfer::kernels::cuda
