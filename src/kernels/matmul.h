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
// Exception, where integer dot products win (MatMulPrecision::kFast, the default): on CPUs with
// AVX-512 VNNI, Q8_0, Q4_0, Q5_0 and Q5_1 weights are multiplied with activations quantized per
// token in blocks of 32, Q4_K, Q5_K and Q6_K weights in blocks of 256, as two 8-bit terms:
// x ~ d1 * q1 + d2 * q2 with d2 = d1 / 254, the second term quantizing what the first leaves
// (kernels/internal/two_term.h). Each term runs as a virtual token through the recurrence
//   acc = fma(float(isum_b), d_w,b * d_x,b, acc)   over blocks b in order,
// isum_b the exact integer block dot, and a token's output is the sum of its two terms' (the
// scalar statements: MatMulQ8Ref in matmul_q8.h, MatMulQ8KRef in matmul_kquant.h). Integer sums
// are exact, so outputs stay bit-identical whatever the batch. The error is that of x's two-term
// rounding: at most sum_b (d2_b / 2) * sum_{i in b} |W[o, i]| per output, 254 times less than
// llama.cpp's single 8-bit term (which exceeded what transformers' own bf16 run deviates). BF16
// and F16 weights run on AMX tiles where the kernel grants them, with x rounded to bf16
// (relative error 2^-9 an element) and the tiles' own f32 accumulation order, the same for one
// token as for many.
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

// What MatMul on this CPU multiplies weights of type t with `cols` columns with: f32 activations
// (exact), activations quantized to 8 bits in blocks of 32 (Q8_0, Q4_0, Q5_0, Q5_1) or of 256
// (Q4_K, Q5_K, Q6_K) on AVX-512 VNNI, or activations rounded to bf16 on AMX tiles (BF16 and F16
// weights with cols a multiple of 32, where AMX may be used; see matmul_amx.cc).
enum class MatMulActivations { kF32, kInt8, kInt8K, kBf16 };
MatMulActivations MatMulActivationsFor(DType t, int64_t cols);

// Whether MatMul on this CPU quantizes the activations for weights of type t with `cols` columns
// to 8 bits (kInt8 or kInt8K above).
bool MatMulUsesQ8Activations(DType t, int64_t cols);

// kFast lets MatMul round activations where a faster path needs it (8-bit activations above);
// kExact keeps f32 activations for every weight type. Process-wide; set it before loading a
// model (the loader repacks weights only for the fast paths) and while no MatMul runs.
enum class MatMulPrecision { kFast, kExact };
void SetMatMulPrecision(MatMulPrecision p);
MatMulPrecision GetMatMulPrecision();

}  // namespace kinfer::kernels
