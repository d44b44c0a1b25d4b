// Activation functions of the MLP, applied elementwise to one token's row, and Gemma 2's
// soft-capping.
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// out[i] = silu(gate[i]) * up[i]; out may alias gate. Callers pass one token's row at a time
// so that an element's arithmetic depends only on its index within the row.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

// out[i] = gelu_tanh(gate[i]) * up[i], gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// (PyTorch's approximate='tanh', Gemma's gelu_pytorch_tanh). out may alias gate; one token's row
// at a time, as for SiluMul.
void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out);

// Scalar reference of GeluTanhMul (std::tanh), for the tests.
void GeluTanhMulRef(const float* gate, const float* up, int64_t n, float* out);

// x[i] = cap * tanh(x[i] / cap): Gemma 2's soft-capping of attention scores and final logits.
void SoftCap(float* x, int64_t n, float cap);

}  // namespace kinfer::kernels
