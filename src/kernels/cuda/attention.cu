#include "kernels/cuda/attention.h"

#include <cuda_fp16.h>

#include <cfloat>

namespace kinfer::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 64;     // positions per softmax step
constexpr int kMaxDim = 256;  // head_dim
constexpr int kMaxSplits = 16;

// Positions per split for a token attending to n positions: whole tiles, at most kMaxSplits.
__device__ __forceinline__ int SplitChunk(int n) {
  const int per = (n + kMaxSplits - 1) / kMaxSplits;
  return max(kTile, (per + kTile - 1) / kTile * kTile);
}
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

// Grid (T, kv_heads, kMaxSplits). Dynamic shared memory: q[group][hd], acc[group][hd],
// s[group][kTile]. Writes each split's unnormalized output, max and sum to the workspace,
// laid out [T][kv_heads][kMaxSplits][group][hd + 2].
template <typename KV>
__global__ void __launch_bounds__(kThreads)
    AttentionKernel(AttentionParams p, TokenTables tt, PagedCache cache) {
  extern __shared__ float smem[];
  __shared__ int64_t row_off[kTile];  // element offset of each tile position's K/V row
  __shared__ float m_run[32], l_run[32], alpha[32];
  const int64_t t = blockIdx.x, kvh = blockIdx.y;
  const int split = static_cast<int>(blockIdx.z);
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads;
  const int32_t pos = tt.pos[t], lo = tt.lo[t];
  const int chunk = SplitChunk(pos - lo + 1);
  const int32_t begin = lo + split * chunk;
  if (begin > pos) return;  // a split past the token's positions: nothing to do
  const int32_t last = min(pos, begin + chunk - 1);
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
  const int32_t* table = tt.tables + tt.table_off[t];
  const KV* kbase = static_cast<const KV*>(cache.keys);
  const KV* vbase = static_cast<const KV*>(cache.values);
  __syncthreads();

  for (int32_t j0 = begin; j0 <= last; j0 += kTile) {
    const int n = min(kTile, last + 1 - j0);
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
#pragma unroll 8
      for (int jj = 0; jj < n; ++jj) a = fmaf(pg[jj], ToF(vbase[row_off[jj] + d]), a);
      acc[i] = a;
    }
    __syncthreads();
  }
  float* out = p.workspace + ((t * p.kv_heads + kvh) * kMaxSplits + split) * group * (hd + 2);
  for (int64_t i = tid; i < group * hd; i += kThreads) out[(i / hd) * (hd + 2) + i % hd] = acc[i];
  if (tid < group) {
    out[tid * (hd + 2) + hd] = m_run[tid];
    out[tid * (hd + 2) + hd + 1] = l_run[tid];
  }
}

// Grid (T, kv_heads): merges a token's splits, in split order.
__global__ void __launch_bounds__(kThreads) CombineKernel(AttentionParams p, TokenTables tt) {
  const int64_t t = blockIdx.x, kvh = blockIdx.y;
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads;
  const int n = tt.pos[t] - tt.lo[t] + 1;
  const int chunk = SplitChunk(n);
  const int splits = (n + chunk - 1) / chunk;
  const float* part = p.workspace + (t * p.kv_heads + kvh) * kMaxSplits * group * (hd + 2);
  const int64_t split_stride = group * (hd + 2);
  for (int64_t i = threadIdx.x; i < group * hd; i += kThreads) {
    const int64_t g = i / hd, d = i % hd;
    const float* pg = part + g * (hd + 2);
    float m = -FLT_MAX;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, pg[s * split_stride + hd]);
    float l = 0.0f, a = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* ps = pg + s * split_stride;
      const float w = expf(ps[hd] - m);
      l = fmaf(ps[hd + 1], w, l);
      a = fmaf(ps[d], w, a);
    }
    const float v = a / l;
    const int64_t o = (t * p.heads + kvh * group) * hd + i;
    if (p.out16) {
      reinterpret_cast<__half*>(p.out16)[o] = __float2half_rn(v);
    } else {
      p.out32[o] = v;
    }
  }
}

}  // namespace

size_t AttentionWorkspaceBytes(int64_t T, int64_t heads, int64_t head_dim) {
  return static_cast<size_t>(T * heads * kMaxSplits * (head_dim + 2)) * sizeof(float);
}

void PagedAttention(const AttentionParams& p, const TokenTables& tt, const PagedCache& cache,
                    int64_t T, cudaStream_t s) {
  if (T <= 0) return;
  const int64_t group = p.heads / p.kv_heads;
  const size_t smem = static_cast<size_t>(group * (2 * p.head_dim + kTile)) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(p.kv_heads), kMaxSplits);
  if (cache.f16) {
    AttentionKernel<__half><<<grid, kThreads, smem, s>>>(p, tt, cache);
  } else {
    AttentionKernel<float><<<grid, kThreads, smem, s>>>(p, tt, cache);
  }
  CombineKernel<<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(p.kv_heads)), kThreads, 0,
                  s>>>(p, tt);
}

}  // namespace kinfer::kernels::cuda
