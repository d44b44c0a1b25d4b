// Compute kernels over plain spans: matmul over quantized weights, RMSNorm, SiLU-gate,
// softmax. SIMD through Google Highway, chosen at run time for the CPU (AVX2, AVX-512, NEON).
// Each kernel computes an output element the same way whatever the batch size, so a token's
// result never depends on what else is in its batch.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kinfer::kernels {

// sum_i a[i] * b[i] in f32, in an order fixed by n alone.
float DotF32(const float* a, const float* b, int64_t n);

// dst[0..n) = the n values stored at src in type t (any compute type).
void DequantizeRow(DType t, const void* src, float* dst, int64_t n);

// y[t * out + o] = sum_i W[o, i] * x[t * in + i] for t < n_tokens and o < out, where W is
// [out, in] in any compute type, accumulated in f32. Work is split over output rows.
void MatMul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// out = x / sqrt(mean(x^2) + eps) * weight; out may alias x.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);

// out[i] = silu(gate[i]) * up[i]; out may alias gate.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

// y[i] += x[i]
void Add(float* y, const float* x, int64_t n);

}  // namespace kinfer::kernels
