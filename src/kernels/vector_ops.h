// f32 vector basics over plain spans: dot product, sum, elementwise add.
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// sum_i a[i] * b[i] in f32, in an order fixed by n alone.
float DotF32(const float* a, const float* b, int64_t n);

// sum_i a[i] in f32, in an order fixed by n alone (the bandwidth test's inner loop).
float SumF32(const float* a, int64_t n);

// y[i] += x[i]
void Add(float* y, const float* x, int64_t n);

// y[i] = a[i] + b[i]
void Add(float* y, const float* a, const float* b, int64_t n);

}  // namespace kinfer::kernels
