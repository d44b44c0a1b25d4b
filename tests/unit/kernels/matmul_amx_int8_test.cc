// The AMX-INT8 K-quant path (matmul_amx_int8.cc) against the VNNI kernel it stands in for
// (matmul_kquant.cc) and against MatMulQ8KRef: bit for bit, for every token count 1..40, odd row
// counts, row ranges split over threads and jobs laid end to end, stored and packed weights.
#include "tests/unit/kernels/kernel_test_util.h"  // first: it opts in to Highway's AVX3_DL

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/internal/matmul_amx_int8.h"
#include "kernels/matmul.h"
#include "kernels/pack.h"

namespace kinfer::kernels {
namespace {

// Runs `f` with the AMX path taking every batch (amx) or none; restores the threshold.
template <typename F>
void WithAmx(bool amx, F&& f) {
  const int64_t old =
      internal::SetAmxInt8KMinTokensForTest(amx ? 1 : std::numeric_limits<int64_t>::max());
  f();
  internal::SetAmxInt8KMinTokensForTest(old);
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(MatMulAmxInt8, KQuantsBitIdenticalToVnniPathAndReference) {
  if (!internal::AmxInt8KUsable() || !MatMulUsesQ8Activations(DType::kQ4_K, 256)) {
    GTEST_SKIP() << "no AMX-INT8 (or no VNNI K-quant path) on this CPU";
  }
  ThreadPool pool1(1), pool3(3);
  for (DType t : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    for (int64_t cols : {256, 768}) {
      for (int64_t rows : {1, 5, 16, 37, 67}) {
        auto bytes = RandomRows(t, rows, cols, 70 + static_cast<uint32_t>(rows));
        const TensorView stored = View(t, rows, cols, bytes);
        auto packed = PackMatrix(stored);
        for (const TensorView* w : {&stored, &packed->view()}) {
          for (int64_t n = 1; n <= 40; ++n) {
            auto x = Random(static_cast<size_t>(n * cols), 71 + static_cast<uint32_t>(n));
            std::vector<float> want(static_cast<size_t>(n * rows)), got(want.size());
            WithAmx(false, [&] { MatMul(*w, x.data(), n, want.data(), pool1); });
            for (ThreadPool* pool : {&pool1, &pool3}) {
              std::fill(got.begin(), got.end(), 0.0f);
              WithAmx(true, [&] { MatMul(*w, x.data(), n, got.data(), *pool); });
              ASSERT_TRUE(SameBits(got, want))
                  << DTypeName(w->dtype) << " rows " << rows << " cols " << cols << " n " << n
                  << " threads " << pool->num_threads();
            }
            if (n % 13 == 1 && rows != 67) {
              std::vector<float> ref(want.size());
              MatMulQ8KRef(stored, x.data(), n, ref.data());
              ASSERT_TRUE(SameBits(got, ref)) << DTypeName(w->dtype) << " n " << n;
            }
          }
        }
      }
    }
    // 8192 columns: more virtual tokens than one token block of the tile path (its activations
    // kept in L2), so later blocks start past token 0.
    {
      auto bytes = RandomRows(t, 37, 8192, 76);
      const TensorView w = View(t, 37, 8192, bytes);
      for (int64_t n : {1, 33, 40, 70}) {
        auto x = Random(static_cast<size_t>(n * 8192), 77);
        std::vector<float> want(static_cast<size_t>(n * 37)), got(want.size());
        WithAmx(false, [&] { MatMul(w, x.data(), n, want.data(), pool1); });
        WithAmx(true, [&] { MatMul(w, x.data(), n, got.data(), pool3); });
        ASSERT_TRUE(SameBits(got, want)) << DTypeName(t) << " 8192 columns n " << n;
      }
    }
    // Jobs of 37, 5 and 70 rows laid end to end: rows of the later ones start mid-group.
    const int64_t cols = 512;
    auto b1 = RandomRows(t, 37, cols, 72), b2 = RandomRows(t, 5, cols, 73),
         b3 = RandomRows(t, 70, cols, 74);
    const TensorView w1 = View(t, 37, cols, b1), w2 = View(t, 5, cols, b2),
                     w3 = View(t, 70, cols, b3);
    auto p1 = PackMatrix(w1), p3 = PackMatrix(w3);
    for (int64_t n : {9, 23}) {
      auto x = Random(static_cast<size_t>(n * cols), 75);
      std::vector<float> want[3] = {std::vector<float>(static_cast<size_t>(n * 37)),
                                    std::vector<float>(static_cast<size_t>(n * 5)),
                                    std::vector<float>(static_cast<size_t>(n * 70))};
      WithAmx(false, [&] {
        MatMul(p1->view(), x.data(), n, want[0].data(), pool1);
        MatMul(w2, x.data(), n, want[1].data(), pool1);
        MatMul(p3->view(), x.data(), n, want[2].data(), pool1);
      });
      std::vector<float> got[3] = {std::vector<float>(want[0].size()),
                                   std::vector<float>(want[1].size()),
                                   std::vector<float>(want[2].size())};
      const MatMulJob jobs[] = {{&p1->view(), x.data(), got[0].data()},
                                {&w2, x.data(), got[1].data()},
                                {&p3->view(), x.data(), got[2].data()}};
      WithAmx(true, [&] { MatMulMany(jobs, n, pool3); });
      for (int j = 0; j < 3; ++j) ASSERT_TRUE(SameBits(got[j], want[j])) << DTypeName(t) << j;
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
