#include "kernels/cuda/matmul.h"

#include <mma.h>

#include <algorithm>

#include "kernels/cuda/dequant.cuh"

namespace kinfer::kernels::cuda {
namespace {

using namespace nvcuda;

constexpr int kBN = 64;        // weight rows per block: 4 warps x 16
constexpr int kBK = 128;       // K per step: 4 dequantized chunks of 16 per thread in flight
constexpr int kLds = kBK + 8;  // padded f16 row of a shared tile (272 bytes: fragments at rows
                               // 16 apart stay 32-byte aligned, fewer bank conflicts)
constexpr int kLdc = kBN + 4;  // padded f32 row of the output tile
constexpr int kThreads = 128;
constexpr int kChunks = kBN * kBK / 16 / kThreads;  // Load16 calls per thread per step

template <int kBM>
struct Smem {
  static constexpr int kTiles = (kBM + kBN) * kLds * 2;
  static constexpr int kOut = kBM * kLdc * 4;
  static constexpr int kBytes = kTiles > kOut ? kTiles : kOut;
};

template <DType kType, int kBM>
__global__ void __launch_bounds__(kThreads)
    MatMulKernel(DeviceMatrix w, const __half* __restrict__ x, int64_t T, float* __restrict__ y,
                 bool accumulate, float* __restrict__ parts) {
  // The x and W tiles, and after the last step the f32 output tile in the same bytes.
  __shared__ __align__(128) unsigned char smem[Smem<kBM>::kBytes];
  auto xs = reinterpret_cast<__half(*)[kLds]>(smem);
  auto ws = reinterpret_cast<__half(*)[kLds]>(smem + kBM * kLds * 2);
  auto cs = reinterpret_cast<float(*)[kLdc]>(smem);
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t K = w.cols, N = w.rows;
  const bool x_vec = K % 8 == 0;  // rows of x in 16-byte pieces
  // This block's part of K: whole steps, the same cut for every T.
  const int64_t steps = (K + kBK - 1) / kBK;
  const int64_t per = (steps + w.splits - 1) / w.splits;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * per * kBK;
  const int64_t k_end = min(K, k_begin + per * kBK);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kBM / 16];
#pragma unroll
  for (int i = 0; i < kBM / 16; ++i) wmma::fill_fragment(acc[i], 0.0f);

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    if (x_vec) {
      for (int i = tid; i < kBM * kBK / 8; i += kThreads) {
        const int r = i / (kBK / 8), c = i % (kBK / 8) * 8;
        const int64_t m = m0 + r, k = k0 + c;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (m < T && k < K) v = *reinterpret_cast<const uint4*>(x + m * K + k);
        *reinterpret_cast<uint4*>(&xs[r][c]) = v;
      }
    } else {
      for (int i = tid; i < kBM * kBK; i += kThreads) {
        const int r = i / kBK, c = i % kBK;
        const int64_t m = m0 + r, k = k0 + c;
        xs[r][c] = (m < T && k < K) ? x[m * K + k] : __float2half(0.0f);
      }
    }
    // Weight tile: kBN rows x kBK, as kChunks pieces of 16 per thread, all loaded before use.
    float v[kChunks][16];
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int idx = tid + j * kThreads;
      const int r = idx / (kBK / 16), c = idx % (kBK / 16) * 16;
      if (n0 + r < N && k0 + c < K) {
        internal::Load16<kType>(w.data + static_cast<size_t>(n0 + r) * w.row_bytes, k0 + c, K,
                                v[j]);
      } else {
#pragma unroll
        for (int i = 0; i < 16; ++i) v[j][i] = 0.0f;
      }
    }
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int idx = tid + j * kThreads;
      const int r = idx / (kBK / 16), c = idx % (kBK / 16) * 16;
#pragma unroll
      for (int i = 0; i < 16; ++i) ws[r][c + i] = __float2half_rn(v[j][i]);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
      wmma::load_matrix_sync(b, &ws[warp * 16][kk], kLds);
#pragma unroll
      for (int i = 0; i < kBM / 16; ++i) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
        wmma::load_matrix_sync(a, &xs[i * 16][kk], kLds);
        wmma::mma_sync(acc[i], a, b, acc[i]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kBM / 16; ++i) {
    wmma::store_matrix_sync(&cs[i * 16][warp * 16], acc[i], kLdc, wmma::mem_row_major);
  }
  __syncthreads();
  for (int i = tid; i < kBM * kBN; i += kThreads) {
    const int r = i / kBN, c = i % kBN;
    const int64_t m = m0 + r, n = n0 + c;
    if (m < T && n < N) {
      if (w.splits > 1) {
        parts[(blockIdx.z * T + m) * N + n] = cs[r][c];
      } else {
        float* out = y + m * N + n;
        *out = accumulate ? __fadd_rn(*out, cs[r][c]) : cs[r][c];
      }
    }
  }
}

// y = (accumulate ? y : 0) + the parts summed in part order.
__global__ void SumPartsKernel(const float* __restrict__ parts, int splits, int64_t n, float* y,
                               bool accumulate) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = parts[i];
    for (int s = 1; s < splits; ++s) v = __fadd_rn(v, parts[s * n + i]);
    y[i] = accumulate ? __fadd_rn(y[i], v) : v;
  }
}

template <DType kType>
void Launch(const DeviceMatrix& w, const __half* x, int64_t T, float* y, bool accumulate,
            float* parts, cudaStream_t s) {
  const unsigned nb = static_cast<unsigned>((w.rows + kBN - 1) / kBN);
  // Few tokens (decode): 16-row tiles waste less of the tensor cores' work. Same arithmetic
  // per element either way, so the choice cannot change a result.
  const unsigned z = static_cast<unsigned>(w.splits);
  if (T <= 16) {
    MatMulKernel<kType, 16><<<dim3(nb, static_cast<unsigned>((T + 15) / 16), z), kThreads, 0, s>>>(
        w, x, T, y, accumulate, parts);
  } else {
    MatMulKernel<kType, 64><<<dim3(nb, static_cast<unsigned>((T + 63) / 64), z), kThreads, 0, s>>>(
        w, x, T, y, accumulate, parts);
  }
  if (w.splits > 1) {
    const int64_t n = T * w.rows;
    const int64_t blocks = std::min<int64_t>((n + 255) / 256, 4096);
    SumPartsKernel<<<static_cast<unsigned>(blocks), 256, 0, s>>>(parts, w.splits, n, y, accumulate);
  }
}

}  // namespace

bool IsSupported(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

int MatMulSplits(int64_t rows, int64_t cols, int target_blocks) {
  const int64_t tiles = (rows + kBN - 1) / kBN;
  const int64_t steps = (cols + kBK - 1) / kBK;
  int64_t splits = std::clamp<int64_t>((target_blocks + tiles - 1) / tiles, 1, steps);
  const int64_t per = (steps + splits - 1) / splits;
  return static_cast<int>((steps + per - 1) / per);  // no empty part
}

size_t MatMulWorkspaceFloats(const DeviceMatrix& w, int64_t T) {
  return w.splits > 1 ? static_cast<size_t>(w.splits * T * w.rows) : 0;
}

void MatMul(const DeviceMatrix& w, const uint16_t* x16, int64_t T, float* y, bool accumulate,
            float* parts, cudaStream_t s) {
  if (T <= 0 || w.rows <= 0) return;
  const __half* x = reinterpret_cast<const __half*>(x16);
  switch (w.dtype) {
    case DType::kF32:
      return Launch<DType::kF32>(w, x, T, y, accumulate, parts, s);
    case DType::kF16:
      return Launch<DType::kF16>(w, x, T, y, accumulate, parts, s);
    case DType::kBF16:
      return Launch<DType::kBF16>(w, x, T, y, accumulate, parts, s);
    case DType::kQ4_0:
      return Launch<DType::kQ4_0>(w, x, T, y, accumulate, parts, s);
    case DType::kQ4_1:
      return Launch<DType::kQ4_1>(w, x, T, y, accumulate, parts, s);
    case DType::kQ5_0:
      return Launch<DType::kQ5_0>(w, x, T, y, accumulate, parts, s);
    case DType::kQ5_1:
      return Launch<DType::kQ5_1>(w, x, T, y, accumulate, parts, s);
    case DType::kQ8_0:
      return Launch<DType::kQ8_0>(w, x, T, y, accumulate, parts, s);
    case DType::kQ4_K:
      return Launch<DType::kQ4_K>(w, x, T, y, accumulate, parts, s);
    case DType::kQ5_K:
      return Launch<DType::kQ5_K>(w, x, T, y, accumulate, parts, s);
    case DType::kQ6_K:
      return Launch<DType::kQ6_K>(w, x, T, y, accumulate, parts, s);
    default:
      return;  // callers check IsSupported first
  }
}

}  // namespace kinfer::kernels::cuda
