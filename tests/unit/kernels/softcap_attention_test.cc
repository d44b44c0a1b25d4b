// Soft-capped paged attention against a double-precision formula over a shuffled block table,
// f32 and f16 caches, windows (lo > 0) included.
#include "kernels/softcap_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"

namespace kinfer::kernels {
namespace {

TEST(SoftCapAttention, MatchesFormula) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t hd = 16, bs = 4, blocks = 6, heads = 2, positions = 21;
  const int32_t table[] = {5, 2, 0, 4, 1, 3};
  for (bool f16 : {false, true}) {
    std::vector<float> k(static_cast<size_t>(blocks * bs * hd)), v(k.size());
    for (float& x : k) x = 2.0f * nd(rng);
    for (float& x : v) x = nd(rng);
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
      k16[i] = Fp32ToFp16(k[i]);
      v16[i] = Fp32ToFp16(v[i]);
      if (f16) {
        k[i] = Fp16ToFp32(k16[i]);
        v[i] = Fp16ToFp32(v16[i]);
      }
    }
    PagedKvView view;
    view.k_base = f16 ? static_cast<const void*>(k16.data()) : k.data();
    view.v_base = f16 ? static_cast<const void*>(v16.data()) : v.data();
    view.block_stride = bs * hd;
    view.block_size = bs;
    view.block_table = table;
    view.f16 = f16;
    std::vector<float> q(static_cast<size_t>(heads * hd));
    for (float& x : q) x = nd(rng);
    const float scale = 0.25f, cap = 2.0f;
    for (int64_t lo : {0, 7}) {
      const int64_t hi = positions - 1;
      std::vector<float> scores(static_cast<size_t>(heads * (hi + 1))), row(hd),
          out(static_cast<size_t>(heads * hd));
      AttendHeadsSoftCap(q.data(), heads, hd, view, lo, hi, scale, cap, scores.data(), row.data(),
                         out.data());
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> p;
        double mx = -1e300, sum = 0;
        auto at = [&](const std::vector<float>& c, int64_t j, int64_t i) {
          return c[static_cast<size_t>((table[j / bs] * bs + j % bs) * hd + i)];
        };
        for (int64_t j = lo; j <= hi; ++j) {
          double s = 0;
          for (int64_t i = 0; i < hd; ++i) s += static_cast<double>(q[h * hd + i]) * at(k, j, i);
          s = cap * std::tanh(s * scale / cap);
          p.push_back(s);
          mx = std::max(mx, s);
        }
        for (double& s : p) sum += (s = std::exp(s - mx));
        for (int64_t i = 0; i < hd; ++i) {
          double want = 0;
          for (int64_t j = lo; j <= hi; ++j)
            want += p[static_cast<size_t>(j - lo)] / sum * at(v, j, i);
          ASSERT_NEAR(out[static_cast<size_t>(h * hd + i)], want, 1e-5) << f16 << " " << lo;
        }
      }
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
