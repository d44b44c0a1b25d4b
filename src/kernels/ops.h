// Compute kernels over plain spans: matmul over quantized weights, RMSNorm, SiLU-gate,
// softmax, paged attention. SIMD through Google Highway, chosen at run time for the CPU (AVX2,
// AVX-512, NEON).
//
// Batch invariance: each kernel computes an output element with an operation sequence fixed by
// the element's own inputs and sizes, never by how many other rows or tokens share the call or
// how the work is split over threads. So a token's result never depends on what else is in its
// batch, and logits are bit-identical alone or batched.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kinfer::kernels {

// sum_i a[i] * b[i] in f32, in an order fixed by n alone.
float DotF32(const float* a, const float* b, int64_t n);

// sum_i a[i] in f32, in an order fixed by n alone (the bandwidth test's inner loop).
float SumF32(const float* a, int64_t n);

// dst[0..n) = the n values stored at src in type t (any compute type).
void DequantizeRow(DType t, const void* src, float* dst, int64_t n);

// dst[0..cols) = row r of matrix w, whatever its layout (packed ones included, pack.h).
void DequantizeMatrixRow(const TensorView& w, int64_t r, float* dst);

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
// isum_b the exact integer block dot; still bit-identical whatever the batch (MatMulQ8Ref is the
// scalar statement of it). The error is that of rounding x to 8 bits: at most
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

// Scalar reference of the 8-bit-activation MatMul (Q8_0 and Q4_0 weights, stored or packed):
// what MatMul computes when MatMulUsesQ8Activations, bit for bit.
void MatMulQ8Ref(const TensorView& w, const float* x, int64_t n_tokens, float* y);

// out = x / sqrt(mean(x^2) + eps) * weight; out may alias x.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);

// out[i] = silu(gate[i]) * up[i]; out may alias gate. Callers pass one token's row at a time
// so that an element's arithmetic depends only on its index within the row.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

// y[i] += x[i]
void Add(float* y, const float* x, int64_t n);

// The lowest i with x[i] the largest of x[0..n) (NaNs are never the largest; 0 when nothing
// but NaN and -inf): greedy sampling over a vocabulary of logits.
int64_t ArgMax(const float* x, int64_t n);

// x[i] = x[a_i] * cos - x[b_i] * sin pairs for one token's heads: rotary embedding.
// `interleaved`: pairs (2i, 2i+1) (GPT-J/llama2.c); otherwise (i, i + rot/2) (NeoX/HF).
// cos/sin hold rot/2 values; the first `rot` of each head's `head_dim` values rotate.
void Rope(float* x, int64_t heads, int64_t head_dim, int64_t rot, const float* cos,
          const float* sin, bool interleaved);

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
