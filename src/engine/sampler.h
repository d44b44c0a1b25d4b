// Turns one sequence's logits into its next token: logit bias, min_tokens masking, repetition/
// presence/frequency penalties, the structured-output mask, temperature, min_p, top_k, top_p,
// then a draw from the sequence's own RNG. The draw uses exactly one number from that RNG per token
// and depends on nothing else in the batch, so a seeded request gives the same tokens in any batch.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "engine/request.h"

namespace kinfer::engine {

struct SampleContext {
  const SamplingParams* params = nullptr;
  std::span<const int32_t> prompt;
  std::span<const int32_t> output;   // tokens generated so far
  std::span<const int32_t> eos_ids;  // masked until min_tokens, unless ignore_eos
  std::mt19937_64* rng = nullptr;
  // Structured output: the tokens allowed next as a bitset (engine/constraint.h); empty: all.
  std::span<const uint32_t> allowed;
};

class Sampler {
 public:
  explicit Sampler(int64_t vocab_size);

  // Picks the next token. `logits` is scratch: it is modified. When `logprob` is not null,
  // fills it with the chosen token's log-probability under the model's raw distribution and
  // the top `params->logprobs` alternatives.
  int32_t Sample(std::span<float> logits, const SampleContext& ctx, TokenLogprob* logprob);

  // log_softmax of raw logits for `token`, with the `top` most likely alternatives.
  static TokenLogprob Logprob(std::span<const float> logits, int32_t token, int32_t top);

 private:
  int64_t vocab_;
  std::vector<int32_t> counts_;      // occurrences of each token in the output
  std::vector<uint8_t> in_context_;  // token seen in prompt or output
  std::vector<int32_t> touched_;     // entries of counts_/in_context_ to reset
  std::vector<int32_t> order_;       // candidate ids, sorted by logit
  std::vector<float> probs_;
};

}  // namespace kinfer::engine
