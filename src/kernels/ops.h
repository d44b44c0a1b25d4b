// Compute kernels over plain spans, one header per operation family (included here for callers
// that use many): matmul over quantized weights (matmul.h, matmul_q8.h), dequantization
// (dequantize.h), paged attention (attention.h), RMSNorm (norm.h), RoPE (rope.h), SiLU-gate
// (activation.h), greedy sampling (sampling.h) and f32 vector basics (vector_ops.h). SIMD
// through Google Highway, chosen at run time for the CPU (AVX2, AVX-512, NEON).
//
// Batch invariance, the contract every kernel keeps: each kernel computes an output element
// with an operation sequence fixed by the element's own inputs and sizes, never by how many
// other rows or tokens share the call or how the work is split over threads. So a token's result
// never depends on what else is in its batch, and logits are bit-identical alone or batched.
#pragma once

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/matmul.h"
#include "kernels/matmul_q8.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/vector_ops.h"
