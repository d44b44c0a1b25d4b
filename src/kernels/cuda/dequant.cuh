// Device-side dequantization: 16 consecutive elements of a weight row as f32, with exactly the
// values of kernels::DequantizeRowRef (the same operations, rounded the same way: products
// and sums use the _rn intrinsics so the compiler cannot fuse them into FMAs).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/dtype.h"

namespace kinfer::kernels::cuda::internal {

__device__ __forceinline__ float HalfBits(const uint8_t* p) {
  const uint16_t h = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ uint32_t U32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

__device__ __forceinline__ void ScaleMinK4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// out[i] = element k0 + i of `row` (i < 16), for k0 a multiple of 16. Plain types read only
// elements below `cols` (the rest are 0); block types have whole blocks, so cols is not needed.
template <DType kType>
__device__ __forceinline__ void Load16(const uint8_t* row, int64_t k0, int64_t cols,
                                       float out[16]) {
  if constexpr (kType == DType::kF32) {
    const float* r = reinterpret_cast<const float*>(row);
#pragma unroll
    for (int i = 0; i < 16; ++i) out[i] = k0 + i < cols ? r[k0 + i] : 0.0f;
  } else if constexpr (kType == DType::kF16) {
    const __half* r = reinterpret_cast<const __half*>(row);
#pragma unroll
    for (int i = 0; i < 16; ++i) out[i] = k0 + i < cols ? __half2float(r[k0 + i]) : 0.0f;
  } else if constexpr (kType == DType::kBF16) {
    const __nv_bfloat16* r = reinterpret_cast<const __nv_bfloat16*>(row);
#pragma unroll
    for (int i = 0; i < 16; ++i) out[i] = k0 + i < cols ? __bfloat162float(r[k0 + i]) : 0.0f;
  } else if constexpr (kType == DType::kQ4_0) {
    const uint8_t* b = row + (k0 / 32) * 18;
    const float d = HalfBits(b);
    const bool high = (k0 % 32) >= 16;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int q = high ? (b[2 + i] >> 4) : (b[2 + i] & 0xF);
      out[i] = __fmul_rn(static_cast<float>(q - 8), d);
    }
  } else if constexpr (kType == DType::kQ4_1) {
    const uint8_t* b = row + (k0 / 32) * 20;
    const float d = HalfBits(b), m = HalfBits(b + 2);
    const bool high = (k0 % 32) >= 16;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int q = high ? (b[4 + i] >> 4) : (b[4 + i] & 0xF);
      out[i] = __fadd_rn(__fmul_rn(static_cast<float>(q), d), m);
    }
  } else if constexpr (kType == DType::kQ5_0) {
    const uint8_t* b = row + (k0 / 32) * 22;
    const float d = HalfBits(b);
    const uint32_t qh = U32(b + 2);
    const int half = static_cast<int>((k0 % 32) / 16);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int lo = half ? (b[6 + i] >> 4) : (b[6 + i] & 0xF);
      const int q = lo | static_cast<int>(((qh >> (i + 16 * half)) & 1) << 4);
      out[i] = __fmul_rn(static_cast<float>(q - 16), d);
    }
  } else if constexpr (kType == DType::kQ5_1) {
    const uint8_t* b = row + (k0 / 32) * 24;
    const float d = HalfBits(b), m = HalfBits(b + 2);
    const uint32_t qh = U32(b + 4);
    const int half = static_cast<int>((k0 % 32) / 16);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int lo = half ? (b[8 + i] >> 4) : (b[8 + i] & 0xF);
      const int q = lo | static_cast<int>(((qh >> (i + 16 * half)) & 1) << 4);
      out[i] = __fadd_rn(__fmul_rn(static_cast<float>(q), d), m);
    }
  } else if constexpr (kType == DType::kQ8_0) {
    const uint8_t* b = row + (k0 / 32) * 34;
    const float d = HalfBits(b);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2) + (k0 % 32);
#pragma unroll
    for (int i = 0; i < 16; ++i) out[i] = __fmul_rn(static_cast<float>(qs[i]), d);
  } else if constexpr (kType == DType::kQ4_K || kType == DType::kQ5_K) {
    constexpr int kBytes = kType == DType::kQ4_K ? 144 : 176;
    const uint8_t* b = row + (k0 / 256) * kBytes;
    const float d = HalfBits(b), dmin = HalfBits(b + 2);
    const int j = static_cast<int>((k0 % 256) / 32);  // sub-block
    const int l0 = static_cast<int>(k0 % 32);
    int sc, m;
    ScaleMinK4(j, b + 4, &sc, &m);
    const float d1 = __fmul_rn(d, static_cast<float>(sc));
    const float m1 = __fmul_rn(dmin, static_cast<float>(m));
    const uint8_t* qs = b + (kType == DType::kQ4_K ? 16 : 48) + (j / 2) * 32;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int l = l0 + i;
      int q = (j & 1) ? (qs[l] >> 4) : (qs[l] & 0xF);
      if constexpr (kType == DType::kQ5_K) {
        const uint8_t* qh = b + 16;
        q += (qh[l] & (1 << j)) ? 16 : 0;
      }
      out[i] = __fsub_rn(__fmul_rn(d1, static_cast<float>(q)), m1);
    }
  } else if constexpr (kType == DType::kQ6_K) {
    const uint8_t* b = row + (k0 / 256) * 210;
    const float d = HalfBits(b + 208);
    const int j = static_cast<int>((k0 % 256) / 32);
    const int n = j / 4, r = j % 4;  // 128-element half, quarter within it
    const uint8_t* ql = b + n * 64;
    const uint8_t* qh = b + 128 + n * 32;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192) + n * 8;
    const int l0 = static_cast<int>(k0 % 32);
    const float s = __fmul_rn(d, static_cast<float>(scales[l0 / 16 + 2 * r]));
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int l = l0 + i;
      const int low = (r & 1) ? ql[l + 32] : ql[l];
      const int q = ((r & 2) ? (low >> 4) : (low & 0xF)) | (((qh[l] >> (2 * r)) & 3) << 4);
      out[i] = __fmul_rn(s, static_cast<float>(q - 32));
    }
  }
}

}  // namespace kinfer::kernels::cuda::internal
