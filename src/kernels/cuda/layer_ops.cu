#include "kernels/cuda/layer_ops.h"

#include <cuda_fp16.h>

#include "kernels/cuda/dequant.cuh"

namespace kinfer::kernels::cuda {
namespace {

template <DType kType>
__global__ void EmbedKernel(DeviceMatrix table, const int32_t* __restrict__ tokens, float* x) {
  const int64_t t = blockIdx.x;
  const uint8_t* row = table.data + static_cast<size_t>(tokens[t]) * table.row_bytes;
  float* out = x + t * table.cols;
  for (int64_t k0 = static_cast<int64_t>(threadIdx.x) * 16; k0 < table.cols;
       k0 += static_cast<int64_t>(blockDim.x) * 16) {
    float v[16];
    internal::Load16<kType>(row, k0, table.cols, v);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      if (k0 + i < table.cols) out[k0 + i] = v[i];
    }
  }
}

__device__ __forceinline__ double WarpSum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

constexpr int kNormThreads = 256;

__global__ void __launch_bounds__(kNormThreads)
    RmsNormKernel(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t dim,
                  const float* __restrict__ weight, float eps, __half* out16, float* out32) {
  __shared__ double partial[kNormThreads / 32];
  const int64_t r = blockIdx.x;
  const float* in = x + (rows ? rows[r] : r) * dim;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += kNormThreads) {
    const double v = in[i];
    ss += v * v;
  }
  ss = WarpSum(ss);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  double total = 0;
#pragma unroll
  for (int w = 0; w < kNormThreads / 32; ++w) total += partial[w];
  const float scale = static_cast<float>(1.0 / sqrt(total / static_cast<double>(dim) + eps));
  for (int64_t i = threadIdx.x; i < dim; i += kNormThreads) {
    const float v = __fmul_rn(__fmul_rn(in[i], scale), weight[i]);
    out16[r * dim + i] = __float2half_rn(v);
    if (out32) out32[r * dim + i] = v;
  }
}

__global__ void SiluMulKernel(const float* __restrict__ gate, const float* __restrict__ up,
                              int64_t n, __half* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = __float2half_rn(__fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]));
  }
}

// One warp per head of one token (blockIdx.x): q heads, then k heads, then v heads.
__global__ void QkvKernel(QkvParams p, TokenTables tt, PagedCache cache) {
  const int64_t t = blockIdx.x;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t warps = blockDim.x / 32;
  const int64_t hd = p.head_dim, half = p.rot / 2;
  const int32_t pos = tt.pos[t];
  const float* cs = p.cos + static_cast<int64_t>(pos) * half;
  const float* sn = p.sin + static_cast<int64_t>(pos) * half;
  const int64_t total = p.heads + 2 * p.kv_heads;
  for (int64_t j = threadIdx.x / 32; j < total; j += warps) {
    float* x;
    const float* bias;
    const float* norm;
    int kind;  // 0 q, 1 k, 2 v
    int64_t h;
    if (j < p.heads) {
      kind = 0, h = j;
      x = p.q + (t * p.heads + h) * hd;
      bias = p.bq ? p.bq + h * hd : nullptr;
      norm = p.q_norm;
    } else if (j < p.heads + p.kv_heads) {
      kind = 1, h = j - p.heads;
      x = p.k + (t * p.kv_heads + h) * hd;
      bias = p.bk ? p.bk + h * hd : nullptr;
      norm = p.k_norm;
    } else {
      kind = 2, h = j - p.heads - p.kv_heads;
      x = p.v + (t * p.kv_heads + h) * hd;
      bias = p.bv ? p.bv + h * hd : nullptr;
      norm = nullptr;
    }
    if (bias) {
      for (int64_t i = lane; i < hd; i += 32) x[i] = __fadd_rn(x[i], bias[i]);
    }
    if (kind != 2 && norm) {
      double ss = 0;
      for (int64_t i = lane; i < hd; i += 32) ss += static_cast<double>(x[i]) * x[i];
      ss = WarpSum(ss);
      const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(hd) + p.eps));
      for (int64_t i = lane; i < hd; i += 32) x[i] = __fmul_rn(__fmul_rn(x[i], scale), norm[i]);
    }
    __syncwarp();
    if (kind != 2) {
      for (int64_t i = lane; i < half; i += 32) {
        const int64_t a = p.interleaved ? 2 * i : i, b = p.interleaved ? 2 * i + 1 : i + half;
        const float x0 = x[a], x1 = x[b], c = cs[i], s = sn[i];
        x[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        x[b] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
      }
    }
    __syncwarp();
    if (kind != 0) {
      const int32_t block = tt.tables[tt.table_off[t] + pos / cache.block_size];
      const int64_t off =
          block * cache.block_stride + (h * cache.block_size + pos % cache.block_size) * hd;
      void* base = kind == 1 ? cache.keys : cache.values;
      for (int64_t i = lane; i < hd; i += 32) {
        if (cache.f16) {
          static_cast<__half*>(base)[off + i] = __float2half_rn(x[i]);
        } else {
          static_cast<float*>(base)[off + i] = x[i];
        }
      }
    }
    __syncwarp();
  }
}

}  // namespace

void EmbedRows(const DeviceMatrix& table, const int32_t* tokens, int64_t n, float* x,
               cudaStream_t s) {
  if (n <= 0) return;
  const dim3 grid(static_cast<unsigned>(n)), block(128);
  switch (table.dtype) {
#define KINFER_EMBED_CASE(T)                                        \
  case DType::T:                                                    \
    EmbedKernel<DType::T><<<grid, block, 0, s>>>(table, tokens, x); \
    return;
    KINFER_EMBED_CASE(kF32)
    KINFER_EMBED_CASE(kF16)
    KINFER_EMBED_CASE(kBF16)
    KINFER_EMBED_CASE(kQ4_0)
    KINFER_EMBED_CASE(kQ4_1)
    KINFER_EMBED_CASE(kQ5_0)
    KINFER_EMBED_CASE(kQ5_1)
    KINFER_EMBED_CASE(kQ8_0)
    KINFER_EMBED_CASE(kQ4_K)
    KINFER_EMBED_CASE(kQ5_K)
    KINFER_EMBED_CASE(kQ6_K)
#undef KINFER_EMBED_CASE
    default:
      return;  // callers check IsSupported first
  }
}

void RmsNormRows(const float* x, const int32_t* rows, int64_t n_rows, int64_t dim,
                 const float* weight, float eps, uint16_t* out16, float* out32, cudaStream_t s) {
  if (n_rows <= 0) return;
  RmsNormKernel<<<static_cast<unsigned>(n_rows), kNormThreads, 0, s>>>(
      x, rows, dim, weight, eps, reinterpret_cast<__half*>(out16), out32);
}

void SiluMul(const float* gate, const float* up, int64_t n, uint16_t* out, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  SiluMulKernel<<<static_cast<unsigned>(blocks), 256, 0, s>>>(gate, up, n,
                                                              reinterpret_cast<__half*>(out));
}

void QkvRopeStore(const QkvParams& p, const TokenTables& tt, const PagedCache& cache, int64_t T,
                  cudaStream_t s) {
  if (T <= 0) return;
  QkvKernel<<<static_cast<unsigned>(T), 128, 0, s>>>(p, tt, cache);
}

}  // namespace kinfer::kernels::cuda
