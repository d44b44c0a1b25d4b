// Paged attention against double-precision softmax(q.K).V, f16 and f32 caches, on every SIMD
// target.
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

// A paged K/V cache of `blocks` blocks for `kv_heads` heads with random f32 entries, their f16
// copies, and a view of head `head` through `table`. With `f16`, the view reads the f16 copies
// and kf/vf are rounded to the values those hold, so a reference sees what the kernel sees.
struct PagedCache {
  int64_t bs, hd, head, block_stride;
  std::vector<float> kf, vf;
  std::vector<uint16_t> kh, vh;
  std::vector<int32_t> table;
  PagedKvView view;

  PagedCache(bool f16, int64_t bs_, int64_t hd_, int64_t kv_heads, int64_t head_,
             std::vector<int32_t> table_, uint32_t seed)
      : bs(bs_),
        hd(hd_),
        head(head_),
        block_stride(kv_heads * bs_ * hd_),
        table(std::move(table_)) {
    const auto n = static_cast<size_t>(static_cast<int64_t>(table.size()) * block_stride);
    kf = Random(n, seed);
    vf = Random(n, seed + 1);
    kh.resize(n);
    vh.resize(n);
    for (size_t i = 0; i < n; ++i) {
      kh[i] = Fp32ToFp16(kf[i]);
      vh[i] = Fp32ToFp16(vf[i]);
      if (f16) {
        kf[i] = Fp16ToFp32(kh[i]);
        vf[i] = Fp16ToFp32(vh[i]);
      }
    }
    view.k_base = f16 ? static_cast<const void*>(kh.data()) : kf.data();
    view.v_base = f16 ? static_cast<const void*>(vh.data()) : vf.data();
    view.block_stride = block_stride;
    view.head_offset = head * bs * hd;
    view.block_size = bs;
    view.block_table = table.data();
    view.f16 = f16;
  }
  PagedCache(const PagedCache&) = delete;
  PagedCache& operator=(const PagedCache&) = delete;

  // Element d of cache row j (keys or values) in `base`, kf or vf.
  double At(const std::vector<float>& base, int64_t j, int64_t d) const {
    return base[static_cast<size_t>(table[static_cast<size_t>(j / bs)] * block_stride +
                                    head * bs * hd + (j % bs) * hd + d)];
  }
};

// Attention of one query over a paged cache with a shuffled block table, f16 and f32 entries,
// odd head sizes and windows starting past 0, against double softmax(q.K) . V.
TEST(Attention, AttendHeadMatchesDoubleReference) {
  ForEachTarget([&] {
    for (bool f16 : {true, false}) {
      for (int64_t hd : {5, 16, 64, 72}) {
        const PagedCache c(f16, /*bs=*/4, hd, /*kv_heads=*/2, /*head=*/1,
                           {7, 2, 5, 0, 8, 1, 3, 6, 4}, 31);
        auto q = Random(static_cast<size_t>(hd), 33);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, 0}, {0, 18}, {5, 35}, {3, 20}}) {
          std::vector<float> scores(static_cast<size_t>(hi + 1)), out(static_cast<size_t>(hd));
          AttendHead(q.data(), hd, c.view, lo, hi, scale, scores.data(), out.data());
          std::vector<double> p;
          double mx = -1e300, sum = 0;
          for (int64_t j = lo; j <= hi; ++j) {
            double s = 0;
            for (int64_t d = 0; d < hd; ++d) s += q[d] * c.At(c.kf, j, d);
            p.push_back(s * scale);
            mx = std::max(mx, p.back());
          }
          for (double& v : p) sum += (v = std::exp(v - mx));
          for (int64_t d = 0; d < hd; ++d) {
            double want = 0;
            for (int64_t j = lo; j <= hi; ++j) want += p[j - lo] / sum * c.At(c.vf, j, d);
            ASSERT_NEAR(out[d], want, 1e-5) << "f16 " << f16 << " hd " << hd << " lo " << lo;
          }
        }
      }
    }
  });
}

// Query heads sharing a KV head, attended together, give each head bit for bit what
// AttendHead gives it alone; spans cross the kernel's chunks of cache rows.
TEST(Attention, AttendHeadsEqualsAttendHeadPerHead) {
  ForEachTarget([&] {
    for (bool f16 : {true, false}) {
      for (int64_t hd : {5, 16, 64, 72, 136}) {
        const int64_t G = 3;
        const PagedCache c(f16, /*bs=*/16, hd, /*kv_heads=*/2, /*head=*/1, {4, 0, 5, 2, 1, 3}, 71);
        auto q = Random(static_cast<size_t>(G * hd), 73);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, 0}, {0, 31}, {0, 95}, {7, 70}}) {
          std::vector<float> scores(static_cast<size_t>(G * (hi + 1))),
              got(static_cast<size_t>(G * hd)), alone(static_cast<size_t>(hd));
          AttendHeads(q.data(), G, hd, c.view, lo, hi, scale, scores.data(), got.data());
          for (int64_t g = 0; g < G; ++g) {
            AttendHead(q.data() + g * hd, hd, c.view, lo, hi, scale, scores.data(), alone.data());
            for (int64_t i = 0; i < hd; ++i) {
              ASSERT_EQ(got[g * hd + i], alone[i]) << "f16 " << f16 << " hd " << hd << " g " << g;
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace kinfer::kernels
