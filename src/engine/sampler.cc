#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/ops.h"

namespace kinfer::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A uniform double in [0, 1) from 53 random bits: one draw per sampled token.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Structured output: tokens outside `allowed` get -inf. When the other rules (min_tokens holding
// back EOS, a stop token, a -100 bias) leave nothing the grammar allows, the grammar wins: its
// tokens get their logits back (`raw` when logprobs kept a copy; otherwise unbiased is unknown,
// so 0), since an output that breaks its schema is worse than an early end.
void ApplyMask(float* l, size_t V, std::span<const uint32_t> allowed,
               const std::vector<float>& raw) {
  bool any = false;
  for (size_t w = 0; w < allowed.size(); ++w) {
    const uint32_t bits = allowed[w];
    const size_t base = w * 32;
    if (bits == 0xFFFFFFFFu && base + 32 <= V) {
      for (size_t i = base; i < base + 32; ++i) any |= l[i] != kNegInf;
      continue;
    }
    const size_t end = std::min(V, base + 32);
    for (size_t i = base; i < end; ++i) {
      if (bits >> (i - base) & 1u) {
        any |= l[i] != kNegInf;
      } else {
        l[i] = kNegInf;
      }
    }
  }
  for (size_t i = allowed.size() * 32; i < V; ++i) l[i] = kNegInf;
  if (any) return;
  for (size_t i = 0; i < V && i / 32 < allowed.size(); ++i) {
    if (allowed[i / 32] >> (i % 32) & 1u) l[i] = raw.empty() ? 0.0f : raw[i];
  }
}

}  // namespace

Sampler::Sampler(int64_t vocab_size)
    : vocab_(vocab_size),
      counts_(static_cast<size_t>(vocab_size), 0),
      in_context_(static_cast<size_t>(vocab_size), 0) {
  order_.reserve(static_cast<size_t>(vocab_size));
  probs_.reserve(static_cast<size_t>(vocab_size));
}

TokenLogprob Sampler::Logprob(std::span<const float> logits, int32_t token, int32_t top) {
  float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  TokenLogprob lp;
  lp.token = token;
  lp.logprob = logits[static_cast<size_t>(token)] - log_z;
  if (top > 0) {
    std::vector<int32_t> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    size_t k = std::min(static_cast<size_t>(top), ids.size());
    std::partial_sort(
        ids.begin(), ids.begin() + static_cast<long>(k), ids.end(), [&](int32_t a, int32_t b) {
          return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
                 (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
        });
    for (size_t i = 0; i < k; ++i) {
      lp.top.emplace_back(ids[i], logits[static_cast<size_t>(ids[i])] - log_z);
    }
  }
  return lp;
}

int32_t Sampler::Sample(std::span<float> logits, const SampleContext& ctx, TokenLogprob* logprob) {
  const SamplingParams& p = *ctx.params;
  const size_t V = static_cast<size_t>(vocab_);
  float* l = logits.data();

  // Raw logprobs are taken before any processing, as vLLM reports them.
  std::vector<float> raw;
  if (logprob) raw.assign(logits.begin(), logits.end());

  if (static_cast<int32_t>(ctx.output.size()) < p.min_tokens) {
    if (!p.ignore_eos) {
      for (int32_t e : ctx.eos_ids) {
        if (e >= 0 && static_cast<size_t>(e) < V) l[e] = kNegInf;
      }
    }
    for (int32_t s : p.stop_token_ids) l[s] = kNegInf;
  }
  for (const auto& [token, bias] : p.logit_bias) l[token] += bias;

  const bool penalties =
      p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  if (penalties) {
    for (int32_t t : ctx.output) {
      if (counts_[static_cast<size_t>(t)]++ == 0 && !in_context_[static_cast<size_t>(t)]) {
        touched_.push_back(t);
      }
      in_context_[static_cast<size_t>(t)] = 1;
    }
    if (p.repetition_penalty != 1.0f) {
      for (int32_t t : ctx.prompt) {
        if (!in_context_[static_cast<size_t>(t)]) {
          in_context_[static_cast<size_t>(t)] = 1;
          touched_.push_back(t);
        }
      }
    }
    for (int32_t t : touched_) {
      float& v = l[t];
      if (p.repetition_penalty != 1.0f && in_context_[static_cast<size_t>(t)]) {
        v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
      }
      int32_t c = counts_[static_cast<size_t>(t)];
      if (c > 0) v -= p.frequency_penalty * static_cast<float>(c) + p.presence_penalty;
    }
    for (int32_t t : touched_) {
      counts_[static_cast<size_t>(t)] = 0;
      in_context_[static_cast<size_t>(t)] = 0;
    }
    touched_.clear();
  }

  if (!ctx.allowed.empty()) ApplyMask(l, V, ctx.allowed, raw);

  int32_t chosen;
  if (p.temperature < 1e-5f) {
    // The lowest id on ties.
    chosen = static_cast<int32_t>(kernels::ArgMax(l, static_cast<int64_t>(V)));
  } else {
    const float inv_t = 1.0f / p.temperature;
    float max = kNegInf;
    for (size_t i = 0; i < V; ++i) max = std::max(max, l[i]);
    // Candidates: every token, narrowed by top_k, min_p and top_p.
    order_.resize(V);
    std::iota(order_.begin(), order_.end(), 0);
    auto by_logit = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
    size_t keep = V;
    const bool need_sort = p.top_p < 1.0f;
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < V) {
      keep = static_cast<size_t>(p.top_k);
      std::partial_sort(order_.begin(), order_.begin() + static_cast<long>(keep), order_.end(),
                        by_logit);
    } else if (need_sort) {
      std::sort(order_.begin(), order_.end(), by_logit);
    }
    probs_.resize(keep);
    double sum = 0;
    for (size_t i = 0; i < keep; ++i) {
      double e = std::exp(static_cast<double>((l[order_[i]] - max) * inv_t));
      probs_[i] = static_cast<float>(e);
      sum += e;
    }
    if (p.min_p > 0) {
      // Relative to the most likely token, whose unnormalized weight is 1.
      const float floor = p.min_p;
      size_t w = 0;
      double kept = 0;
      for (size_t i = 0; i < keep; ++i) {
        if (probs_[i] >= floor) {
          order_[w] = order_[i];
          probs_[w++] = probs_[i];
          kept += probs_[i];
        }
      }
      keep = w;
      sum = kept;
    }
    if (need_sort) {
      // Smallest prefix (in descending order, kept by min_p's filter) whose mass reaches
      // top_p; at least one token.
      double target = p.top_p * sum, acc = 0;
      size_t w = 0;
      while (w < keep) {
        acc += probs_[w++];
        if (acc >= target) break;
      }
      keep = std::max<size_t>(w, 1);
      sum = 0;
      for (size_t i = 0; i < keep; ++i) sum += probs_[i];
    }
    double u = Uniform(*ctx.rng) * sum, acc = 0;
    chosen = order_[keep - 1];
    for (size_t i = 0; i < keep; ++i) {
      acc += probs_[i];
      if (u < acc) {
        chosen = order_[i];
        break;
      }
    }
  }
  if (logprob) *logprob = Logprob(raw, chosen, p.logprobs.value_or(0));
  return chosen;
}

}  // namespace kinfer::engine
