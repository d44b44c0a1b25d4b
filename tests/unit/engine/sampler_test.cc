// Sampler: each processing step against its formula (OpenAI's penalties, HF's repetition
// penalty, vLLM's min_p/top_k/top_p), sampled frequencies against the softmax, and seeds.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kinfer::engine {
namespace {

struct Case {
  SamplingParams p;
  std::vector<int32_t> prompt, output, eos{2};
  std::mt19937_64 rng{1};
  SampleContext Ctx() {
    SampleContext c;
    c.params = &p;
    c.prompt = prompt;
    c.output = output;
    c.eos_ids = eos;
    c.rng = &rng;
    return c;
  }
};

std::vector<float> LogitsFor(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::vector<double> Frequencies(Case& s, const std::vector<float>& logits, int draws) {
  Sampler sampler(static_cast<int64_t>(logits.size()));
  std::vector<double> f(logits.size());
  for (int i = 0; i < draws; ++i) {
    std::vector<float> l = logits;
    f[static_cast<size_t>(sampler.Sample(l, s.Ctx(), nullptr))] += 1.0 / draws;
  }
  return f;
}

TEST(Sampler, GreedyPicksTheLargestLowestIdOnTies) {
  Case s;
  s.p.temperature = 0;
  Sampler sampler(4);
  std::vector<float> l = {1, 3, 3, 2};
  EXPECT_EQ(sampler.Sample(l, s.Ctx(), nullptr), 1);
}

TEST(Sampler, SampledFrequenciesFollowTheSoftmax) {
  Case s;
  s.p.temperature = 1;
  auto f = Frequencies(s, LogitsFor({0.5, 0.3, 0.15, 0.05}), 40000);
  EXPECT_NEAR(f[0], 0.5, 0.01);
  EXPECT_NEAR(f[1], 0.3, 0.01);
  EXPECT_NEAR(f[2], 0.15, 0.01);
  EXPECT_NEAR(f[3], 0.05, 0.006);
  s.p.temperature = 0.5;  // p^2 renormalized: .25/.09/.0225/.0025 over .365
  f = Frequencies(s, LogitsFor({0.5, 0.3, 0.15, 0.05}), 40000);
  EXPECT_NEAR(f[0], 0.25 / 0.365, 0.01);
  EXPECT_NEAR(f[1], 0.09 / 0.365, 0.01);
}

TEST(Sampler, TopKTopPAndMinPNarrowTheCandidates) {
  const auto logits = LogitsFor({0.5, 0.3, 0.15, 0.05});
  Case s;
  s.p.top_k = 2;
  auto f = Frequencies(s, logits, 20000);
  EXPECT_EQ(f[2] + f[3], 0);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.015);
  s.p.top_k = 0;
  s.p.top_p = 0.7f;  // smallest set reaching 70%: {0, 1}
  f = Frequencies(s, logits, 20000);
  EXPECT_EQ(f[2] + f[3], 0);
  EXPECT_GT(f[1], 0.3);
  s.p.top_p = 0.4f;  // token 0 alone reaches it
  f = Frequencies(s, logits, 2000);
  EXPECT_NEAR(f[0], 1.0, 1e-9);
  s.p.top_p = 1;
  s.p.min_p = 0.5f;  // keep p >= 0.25: tokens 0 and 1
  f = Frequencies(s, logits, 20000);
  EXPECT_EQ(f[2] + f[3], 0);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.015);
}

TEST(Sampler, PenaltiesAndBiasFollowTheirFormulas) {
  Case s;
  s.p.temperature = 0;
  Sampler sampler(5);
  // Token 0 leads by 1.0. It appeared twice in the output: frequency 0.3*2 + presence 0.5 = 1.1
  // brings it below token 1.
  s.output = {0, 0};
  s.p.frequency_penalty = 0.3f;
  s.p.presence_penalty = 0.5f;
  std::vector<float> l = {3.0f, 2.0f, -1, -1, -1};
  EXPECT_EQ(sampler.Sample(l, s.Ctx(), nullptr), 1);
  EXPECT_FLOAT_EQ(l[0], 3.0f - 1.1f);
  // HF repetition penalty divides positive logits and multiplies negative ones, over prompt
  // and output.
  Case r;
  r.p.temperature = 0;
  r.p.repetition_penalty = 2.0f;
  r.prompt = {3};
  r.output = {0};
  l = {3.0f, 2.0f, -1, -1, -1};
  EXPECT_EQ(sampler.Sample(l, r.Ctx(), nullptr), 1);
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  EXPECT_FLOAT_EQ(l[3], -2.0f);
  EXPECT_FLOAT_EQ(l[4], -1.0f);
  // The penalty state does not leak into the next call.
  Case clean;
  clean.p.temperature = 0;
  l = {3.0f, 2.0f, -1, -1, -1};
  EXPECT_EQ(sampler.Sample(l, clean.Ctx(), nullptr), 0);
  // logit_bias of +100 forces a token.
  clean.p.logit_bias = {{4, 100.0f}};
  l = {3.0f, 2.0f, -1, -1, -1};
  EXPECT_EQ(sampler.Sample(l, clean.Ctx(), nullptr), 4);
}

TEST(Sampler, MinTokensMasksEosAndStopTokens) {
  Case s;
  s.p.temperature = 0;
  s.p.min_tokens = 2;
  s.p.stop_token_ids = {3};
  s.output = {1};
  Sampler sampler(5);
  std::vector<float> l = {0, 0, 9, 8, 1};  // EOS (2) then stop token (3) lead
  EXPECT_EQ(sampler.Sample(l, s.Ctx(), nullptr), 4);
  s.output = {1, 1};
  l = {0, 0, 9, 8, 1};
  EXPECT_EQ(sampler.Sample(l, s.Ctx(), nullptr), 2);
}

TEST(Sampler, LogprobsAreRawLogSoftmaxWithTopAlternatives) {
  std::vector<float> l = {1.0f, 2.0f, 0.5f, -3.0f};
  double z = 0;
  for (float v : l) z += std::exp(static_cast<double>(v));
  TokenLogprob lp = Sampler::Logprob(l, 2, 2);
  EXPECT_NEAR(lp.logprob, 0.5 - std::log(z), 1e-6);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].first, 1);
  EXPECT_EQ(lp.top[1].first, 0);
  EXPECT_NEAR(lp.top[0].second, 2.0 - std::log(z), 1e-6);
  // Through Sample: reported before the bias that forced the choice.
  Case s;
  s.p.temperature = 0;
  s.p.logprobs = 1;
  s.p.logit_bias = {{3, 100.0f}};
  Sampler sampler(4);
  std::vector<float> work = l;
  TokenLogprob got;
  EXPECT_EQ(sampler.Sample(work, s.Ctx(), &got), 3);
  EXPECT_NEAR(got.logprob, -3.0 - std::log(z), 1e-6);
  EXPECT_EQ(got.top[0].first, 1);
}

TEST(Sampler, SameSeedSameDraws) {
  const auto logits = LogitsFor({0.25, 0.25, 0.25, 0.25});
  Sampler sampler(4);
  auto run = [&](uint64_t seed) {
    Case s;
    s.rng.seed(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 32; ++i) {
      std::vector<float> l = logits;
      out.push_back(sampler.Sample(l, s.Ctx(), nullptr));
    }
    return out;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

}  // namespace
}  // namespace kinfer::engine
