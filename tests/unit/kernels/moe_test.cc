// Mixture-of-experts kernels: top-k routing against a sort-based reference (transformers'
// softmax -> topk -> renormalize), and the grouped expert FFN against running each token's
// experts one by one with the same kernels, bit for bit, whatever else shares the step.
#include "kernels/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/ops.h"

namespace kinfer::kernels {
namespace {

TEST(Moe, RouteTopKMatchesSoftmaxSortReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (int64_t E : {4, 8, 64, 128}) {
    for (int64_t k : {1, 2, 8}) {
      if (k > E) continue;
      for (bool normalize : {false, true}) {
        std::vector<float> logits(static_cast<size_t>(E));
        for (float& v : logits) v = nd(rng);
        std::vector<int32_t> ids(static_cast<size_t>(k));
        std::vector<float> w(static_cast<size_t>(k));
        RouteTopK(logits.data(), E, k, normalize, ids.data(), w.data());
        std::vector<double> p(logits.begin(), logits.end());
        const double mx = *std::max_element(p.begin(), p.end());
        double sum = 0;
        for (double& v : p) sum += (v = std::exp(v - mx));
        std::vector<int32_t> order(static_cast<size_t>(E));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
          return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)];
        });
        double chosen = 0;
        for (int64_t j = 0; j < k; ++j) chosen += p[static_cast<size_t>(order[j])] / sum;
        for (int64_t j = 0; j < k; ++j) {
          ASSERT_EQ(ids[static_cast<size_t>(j)], order[static_cast<size_t>(j)]) << E << " " << k;
          double want = p[static_cast<size_t>(order[j])] / sum / (normalize ? chosen : 1.0);
          ASSERT_NEAR(w[static_cast<size_t>(j)], want, 1e-6) << E << " " << k;
        }
      }
    }
  }
  // Ties go to the lower expert index.
  std::vector<float> tied = {1.0f, 3.0f, 3.0f, 0.0f};
  int32_t ids[2];
  float w[2];
  RouteTopK(tied.data(), 4, 2, true, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_FLOAT_EQ(w[0], 0.5f);
}

TEST(Moe, GroupByExpertIsAStableCountingSort) {
  const int32_t ids[] = {2, 0, 1, 2, 2, 1};  // 3 tokens x top-2
  ExpertGroups g;
  GroupByExpert(ids, 3, 2, 4, &g);
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0, 1, 3, 6, 6}));
  EXPECT_EQ(g.slots, (std::vector<int32_t>{1, 2, 5, 0, 3, 4}));
}

// Random experts in `type`, [rows, cols] each.
struct Experts {
  std::vector<std::vector<float>> data;
  std::vector<TensorView> views;
  Experts(int64_t E, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 0.2f);
    data.resize(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) {
      auto& d = data[static_cast<size_t>(e)];
      d.resize(static_cast<size_t>(rows * cols));
      for (float& v : d) v = nd(rng);
      TensorView t;
      t.dtype = DType::kF32;
      t.ndim = 2;
      t.shape = {rows, cols, 0, 0};
      t.data = d.data();
      t.nbytes = d.size() * 4;
      views.push_back(t);
    }
  }
};

TEST(Moe, GroupedExpertsEqualPerTokenExpertsBitForBit) {
  std::mt19937 rng(11);
  const int64_t E = 8, H = 48, F = 40, k = 2, T = 13;
  Experts gate(E, F, H, rng), up(E, F, H, rng), down(E, H, F, rng);
  ExpertWeights w{gate.views, up.views, down.views};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T * H)), logits(static_cast<size_t>(T * E));
  for (float& v : x) v = nd(rng);
  for (float& v : logits) v = nd(rng);
  std::vector<int32_t> ids(static_cast<size_t>(T * k));
  std::vector<float> weights(static_cast<size_t>(T * k));
  for (int64_t t = 0; t < T; ++t) {
    RouteTopK(logits.data() + t * E, E, k, true, ids.data() + t * k, weights.data() + t * k);
  }
  ThreadPool pool(2);
  MoeWorkspace ws;
  std::vector<float> out(static_cast<size_t>(T * H));
  MoeFeedForward(w, x.data(), T, H, ids.data(), weights.data(), k, out.data(), ws, pool);

  for (int64_t t = 0; t < T; ++t) {
    // The token alone in its step gives the same bits.
    std::vector<float> alone(static_cast<size_t>(H));
    MoeFeedForward(w, x.data() + t * H, 1, H, ids.data() + t * k, weights.data() + t * k, k,
                   alone.data(), ws, pool);
    ASSERT_TRUE(std::equal(alone.begin(), alone.end(), out.begin() + t * H)) << "token " << t;
    // And the plain formula, expert by expert, in double.
    for (int64_t i = 0; i < H; ++i) {
      double want = 0;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = ids[static_cast<size_t>(t * k + j)];
        const float* g = gate.data[static_cast<size_t>(e)].data();
        const float* u = up.data[static_cast<size_t>(e)].data();
        const float* d = down.data[static_cast<size_t>(e)].data();
        double y = 0;
        for (int64_t f = 0; f < F; ++f) {
          double gs = 0, us = 0;
          for (int64_t h = 0; h < H; ++h) {
            gs += static_cast<double>(g[f * H + h]) * x[static_cast<size_t>(t * H + h)];
            us += static_cast<double>(u[f * H + h]) * x[static_cast<size_t>(t * H + h)];
          }
          y += d[i * F + f] * (gs / (1 + std::exp(-gs)) * us);
        }
        want += weights[static_cast<size_t>(t * k + j)] * y;
      }
      ASSERT_NEAR(out[static_cast<size_t>(t * H + i)], want, 1e-4) << t << " " << i;
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
