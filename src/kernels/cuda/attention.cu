#include "kernels/cuda/attention.h"

#include <cuda_fp16.h>

#include <cfloat>

namespace kinfer::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 64;     // positions per softmax step
constexpr int kMaxDim = 256;  // head_dim
constexpr int kDimPerLane = kMaxDim / 32;

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float WarpSumF(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename KV>
__device__ __forceinline__ float ToF(KV v) {
  if constexpr (sizeof(KV) == 2) {
    return __half2float(v);
  } else {
    return v;
  }
}

// Grid (T, kv_heads). Dynamic shared memory: q[group][hd], acc[group][hd], s[group][kTile].
template <typename KV>
__global__ void __launch_bounds__(kThreads)
    AttentionKernel(AttentionParams p, TokenTables tt, PagedCache cache) {
  extern __shared__ float smem[];
  __shared__ int64_t row_off[kTile];  // element offset of each tile position's K/V row
  __shared__ float m_run[32], l_run[32], alpha[32];
  const int64_t t = blockIdx.x, kvh = blockIdx.y;
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  float* qs = smem;              // [group][hd]
  float* acc = qs + group * hd;  // [group][hd]
  float* s = acc + group * hd;   // [group][kTile]

  const float* q = p.q + (t * p.heads + kvh * group) * hd;
  for (int64_t i = tid; i < group * hd; i += kThreads) {
    qs[i] = q[i];
    acc[i] = 0.0f;
  }
  if (tid < group) {
    m_run[tid] = -FLT_MAX;
    l_run[tid] = 0.0f;
  }
  const int32_t pos = tt.pos[t], lo = tt.lo[t];
  const int32_t* table = tt.tables + tt.table_off[t];
  const KV* kbase = static_cast<const KV*>(cache.keys);
  const KV* vbase = static_cast<const KV*>(cache.values);
  __syncthreads();

  for (int32_t j0 = lo; j0 <= pos; j0 += kTile) {
    const int n = min(kTile, pos + 1 - j0);
    if (tid < n) {
      const int32_t j = j0 + tid;
      const int64_t block = table[j / cache.block_size];
      row_off[tid] =
          block * cache.block_stride + (kvh * cache.block_size + j % cache.block_size) * hd;
    }
    __syncthreads();
    // Scores: a warp per position, lanes over the head dimension.
    for (int jj = warp; jj < n; jj += kWarps) {
      const KV* krow = kbase + row_off[jj];
      float kv[kDimPerLane];
#pragma unroll
      for (int u = 0; u < kDimPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        kv[u] = d < hd ? ToF(krow[d]) : 0.0f;
      }
      for (int64_t g = 0; g < group; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int u = 0; u < kDimPerLane; ++u) {
          const int64_t d = lane + 32 * u;
          if (d < hd) dot = fmaf(qs[g * hd + d], kv[u], dot);
        }
        dot = WarpSumF(dot);
        if (lane == 0) s[g * kTile + jj] = dot * p.scale;
      }
    }
    __syncthreads();
    // Softmax step: a warp per query head.
    for (int64_t g = warp; g < group; g += kWarps) {
      float* sg = s + g * kTile;
      float mx = -FLT_MAX;
      for (int jj = lane; jj < n; jj += 32) mx = fmaxf(mx, sg[jj]);
      mx = WarpMax(mx);
      const float m_new = fmaxf(m_run[g], mx);
      float sum = 0.0f;
      for (int jj = lane; jj < n; jj += 32) {
        const float e = expf(sg[jj] - m_new);
        sg[jj] = e;
        sum += e;
      }
      sum = WarpSumF(sum);
      __syncwarp();
      if (lane == 0) {
        const float a = expf(m_run[g] - m_new);
        alpha[g] = a;
        l_run[g] = l_run[g] * a + sum;
        m_run[g] = m_new;
      }
    }
    __syncthreads();
    // Values: each thread owns (head, dim) pairs.
    for (int64_t i = tid; i < group * hd; i += kThreads) {
      const int64_t g = i / hd, d = i % hd;
      const float* pg = s + g * kTile;
      float a = acc[i] * alpha[g];
      for (int jj = 0; jj < n; ++jj) a = fmaf(pg[jj], ToF(vbase[row_off[jj] + d]), a);
      acc[i] = a;
    }
    __syncthreads();
  }
  for (int64_t i = tid; i < group * hd; i += kThreads) {
    const int64_t g = i / hd;
    const float v = acc[i] / l_run[g];
    const int64_t o = (t * p.heads + kvh * group) * hd + i;
    if (p.out16) {
      reinterpret_cast<__half*>(p.out16)[o] = __float2half_rn(v);
    } else {
      p.out32[o] = v;
    }
  }
}

}  // namespace

void PagedAttention(const AttentionParams& p, const TokenTables& tt, const PagedCache& cache,
                    int64_t T, cudaStream_t s) {
  if (T <= 0) return;
  const int64_t group = p.heads / p.kv_heads;
  const size_t smem = static_cast<size_t>(group * (2 * p.head_dim + kTile)) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(p.kv_heads));
  if (cache.f16) {
    AttentionKernel<__half><<<grid, kThreads, smem, s>>>(p, tt, cache);
  } else {
    AttentionKernel<float><<<grid, kThreads, smem, s>>>(p, tt, cache);
  }
}

}  // namespace kinfer::kernels::cuda
