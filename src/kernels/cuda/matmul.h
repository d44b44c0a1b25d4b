// y = x W^T on the GPU, for weights in any supported stored type, dequantized on the fly.
//
// One kernel for every batch size: tiles of 64 weight rows by 16 or 64 tokens, K in steps of
// 128 (16 at a time through the tensor cores), f16 products (WMMA 16x16x16) accumulated in
// f32 in K order, never split over K. So
// y[t, n] is the same sequence of operations on row t of x and row n of W whatever T is: a
// token's result does not depend on its batch (decoder.h's contract), and decode (T = 1) reads
// each weight once, which is what bounds it.
//
// Accuracy against the CPU's f32 MatMul: x is rounded to f16 (the caller's f16 input) and so is
// each dequantized weight, products are exact in f32; the relative error of an output is about
// 2^-11 * sqrt(K) * max|x_k w_k| / |y| in the worst case and far less on average.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_matrix.h"

namespace kinfer::kernels::cuda {

// y[t * w.rows + n] = (accumulate ? y[...] : 0) + sum_k x[t * w.cols + k] * W[n, k]
// for t < tokens, n < w.rows. x is f16 (IEEE half bits), y f32; both in device memory.
void MatMul(const DeviceMatrix& w, const uint16_t* x, int64_t tokens, float* y, bool accumulate,
            cudaStream_t stream);

}  // namespace kinfer::kernels::cuda
