// Mixture-of-experts kernels (Qwen3-MoE, Mixtral): top-k routing and the expert feed-forward
// networks run over tokens grouped by expert, so each chosen expert's weights are read once per
// step however many tokens chose it.
//
// Batch invariance (ops.h): a token's routing depends only on its router logits; each expert
// output row is a MatMul row, computed the same whatever else is in the group; a token's
// outputs are summed in the order of its own top-k list. So its result never depends on which
// other tokens share the step or the expert.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kinfer::kernels {

// The `k` experts with the largest softmax(logits) probability, best first (ties: the lower
// index), and their weights: the probabilities, divided by their sum when `normalize`.
// Softmax in f32 with the maximum subtracted, as transformers computes it.
void RouteTopK(const float* logits, int64_t num_experts, int64_t k, bool normalize, int32_t* ids,
               float* weights);

// Tokens grouped by expert: the (token, rank) slots t * k + j that chose expert e are
// slots[offsets[e] .. offsets[e + 1]), in increasing slot order.
struct ExpertGroups {
  std::vector<int32_t> offsets;  // num_experts + 1
  std::vector<int32_t> slots;
};
void GroupByExpert(const int32_t* ids, int64_t n_tokens, int64_t k, int64_t num_experts,
                   ExpertGroups* groups);

// One layer's experts: expert e computes down_e(silu(gate_e x) * up_e x).
struct ExpertWeights {
  std::span<const TensorView> gate, up;  // [ffn, hidden] each
  std::span<const TensorView> down;      // [hidden, ffn] each
};

// Scratch of MoeFeedForward, grown to the largest step seen.
struct MoeWorkspace {
  ExpertGroups groups;
  std::vector<float> x, gate, up, slot_out;
};

// out[t] = sum_j weights[t * k + j] * expert_{ids[t * k + j]}(x[t]) for t < n_tokens, the sum
// taken in j order. x and out are [n_tokens, hidden]; they must not overlap.
void MoeFeedForward(const ExpertWeights& w, const float* x, int64_t n_tokens, int64_t hidden,
                    const int32_t* ids, const float* weights, int64_t k, float* out,
                    MoeWorkspace& ws, ThreadPool& pool);

}  // namespace kinfer::kernels
