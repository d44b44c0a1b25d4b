// Activation functions of the MLP, applied elementwise to one token's row.
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// out[i] = silu(gate[i]) * up[i]; out may alias gate. Callers pass one token's row at a time
// so that an element's arithmetic depends only on its index within the row.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

}  // namespace kinfer::kernels
