// Rotary position embedding (RoPE) of one token's query or key heads.
#pragma once

#include <cstdint>

namespace kinfer::kernels {

// x[i] = x[a_i] * cos - x[b_i] * sin pairs for one token's heads: rotary embedding.
// `interleaved`: pairs (2i, 2i+1) (GPT-J/llama2.c); otherwise (i, i + rot/2) (NeoX/HF).
// cos/sin hold rot/2 values; the first `rot` of each head's `head_dim` values rotate.
void Rope(float* x, int64_t heads, int64_t head_dim, int64_t rot, const float* cos,
          const float* sin, bool interleaved);

}  // namespace kinfer::kernels
