// y = x W^T on the GPU, for weights in any supported stored type, dequantized on the fly.
//
// One kernel for every batch size: tiles of 64 weight rows by 16 or 64 tokens, K in steps of
// 128 (16 at a time through the tensor cores), f16 products (WMMA 16x16x16) accumulated in
// f32 in K order. A matrix with few row tiles (decode's q/k/v/o and down projections) has K cut
// into w.splits parts computed by separate blocks and summed in part order by a second kernel;
// the parts depend on the matrix alone. So y[t, n] is the same sequence of operations on row t
// of x and row n of W whatever T is: a token's result does not depend on its batch
// (decoder.h's contract), and decode (T = 1) reads each weight once, which is what bounds it.
//
// Accuracy against the CPU's f32 MatMul: x is rounded to f16 (the caller's f16 input) and so is
// each dequantized weight, products are exact in f32; the relative error of an output is about
// 2^-11 * sqrt(K) * max|x_k w_k| / |y| in the worst case and far less on average.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_matrix.h"

namespace kinfer::kernels::cuda {

// How many parts to cut the K of a [rows, cols] matrix into so that a one-token matmul runs
// about `target_blocks` blocks: 1 when the row tiles alone are that many.
int MatMulSplits(int64_t rows, int64_t cols, int target_blocks);

// Floats of workspace MatMul needs for `tokens` tokens of w (0 when w.splits == 1).
size_t MatMulWorkspaceFloats(const DeviceMatrix& w, int64_t tokens);

// y[t * w.rows + n] = (accumulate ? y[...] : 0) + sum_k x[t * w.cols + k] * W[n, k]
// for t < tokens, n < w.rows. x is f16 (IEEE half bits), y f32, `workspace` at least
// MatMulWorkspaceFloats(w, tokens) floats; all in device memory.
void MatMul(const DeviceMatrix& w, const uint16_t* x, int64_t tokens, float* y, bool accumulate,
            float* workspace, cudaStream_t stream);

}  // namespace kinfer::kernels::cuda
