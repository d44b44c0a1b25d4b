// Matrix times activations for every weight type: y = W x over a batch of tokens, split over
// output rows between threads. The per-family paths live in matmul_f32.cc (f32 activations, any
// weight type) and matmul_q8.cc (Q8_0/Q4_0 on 8-bit activations).
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kinfer::kernels {

// y[t * out + o] = sum_i W[o, i] * x[t * in + i] for t < n_tokens and o < out, where W is
// [out, in] in any compute type, accumulated in f32. Work is split over output rows only.
//
// Each (o, t) is computed the same way whatever n_tokens is: W's row is dequantized to f32
// (the same values as DequantizeRowRef), one f32 vector accumulator takes fused multiply-adds
// over the row in order, and its lanes are summed in a fixed tree.
//
// W may be in a packed layout (pack.h): the result is bit for bit that of the stored layout.
//
// Exception, where integer dot products win: on CPUs with AVX-512 VNNI, Q8_0 and Q4_0 weights
// are multiplied with activations quantized per token to 8 bits (blocks of 32, f32 scale, round
// to nearest even), as llama.cpp does. Each (o, t) is then the recurrence
//   acc = fma(float(isum_b), d_w,b * d_x,b, acc)   over blocks b in order,
// isum_b the exact integer block dot; still bit-identical whatever the batch (MatMulQ8Ref in
// matmul_q8.h is the scalar statement of it). The error is that of rounding x to 8 bits: at most
// sum_b (d_x,b / 2) * sum_{i in b} |W[o, i]| per output.
void MatMul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// One matmul of MatMulMany: y = W x for W = *w (see MatMul).
struct MatMulJob {
  const TensorView* w;
  const float* x;
  float* y;
};

// Up to four matmuls over the same n_tokens in one parallel region (q/k/v, gate/up): their
// rows, laid end to end, are split over the threads, so the pool meets once instead of once
// per matmul. Each output is computed exactly as MatMul computes it.
void MatMulMany(std::span<const MatMulJob> jobs, int64_t n_tokens, ThreadPool& pool);

// Whether MatMul on this CPU quantizes the activations for weights of type t with `cols` columns.
bool MatMulUsesQ8Activations(DType t, int64_t cols);

}  // namespace kinfer::kernels
