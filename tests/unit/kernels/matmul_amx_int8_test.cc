// The AMX-INT8 paths against the VNNI kernels they stand in for and against the scalar
// statements, bit for bit: K-quants (matmul_amx_int8.cc vs matmul_kquant.cc, MatMulQ8KRef) and
// Q8_0, Q4_0, Q5_0, Q5_1 (matmul_amx_q8.cc vs matmul_q8.cc, MatMulQ8Ref). Every token count
// 1..40, odd row counts, block counts that do not fill the tiles, row ranges split over threads,
// jobs laid end to end, stored and packed weights.
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

// One AMX-INT8 path: the types it takes and the test hook that moves its token threshold.
struct AmxPath {
  std::vector<DType> types;
  int64_t (*set_min_tokens)(int64_t);
  std::vector<int64_t> cols;  // small widths, each a whole number of the types' blocks
  int64_t jobs_cols;
  uint32_t seed;
};

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void ExpectBitIdenticalToVnniAndReference(const AmxPath& path) {
  // Runs `f` with the tiles taking every batch (amx) or none; restores the threshold.
  auto with_amx = [&](bool amx) {
    return [&path, amx](auto&& f) {
      const int64_t old = path.set_min_tokens(amx ? 1 : std::numeric_limits<int64_t>::max());
      f();
      path.set_min_tokens(old);
    };
  };
  ThreadPool pool1(1), pool3(3);
  for (DType t : path.types) {
    for (int64_t cols : path.cols) {
      for (int64_t rows : {1, 5, 16, 37, 67}) {
        auto bytes = RandomRows(t, rows, cols, path.seed + static_cast<uint32_t>(rows));
        const TensorView stored = View(t, rows, cols, bytes);
        auto packed = PackMatrix(stored);
        for (const TensorView* w : {&stored, &packed->view()}) {
          for (int64_t n = 1; n <= 40; ++n) {
            auto x =
                Random(static_cast<size_t>(n * cols), path.seed + 1 + static_cast<uint32_t>(n));
            std::vector<float> want(static_cast<size_t>(n * rows)), got(want.size());
            with_amx(false)([&] { MatMul(*w, x.data(), n, want.data(), pool1); });
            for (ThreadPool* pool : {&pool1, &pool3}) {
              std::fill(got.begin(), got.end(), 0.0f);
              with_amx(true)([&] { MatMul(*w, x.data(), n, got.data(), *pool); });
              ASSERT_TRUE(SameBits(got, want))
                  << DTypeName(w->dtype) << " rows " << rows << " cols " << cols << " n " << n
                  << " threads " << pool->num_threads();
            }
            if (n % 13 == 1 && rows != 67) {
              std::vector<float> ref(want.size());
              Q8Ref(stored, x.data(), n, ref.data());
              ASSERT_TRUE(SameBits(got, ref)) << DTypeName(w->dtype) << " n " << n;
            }
          }
        }
      }
    }
    // 8192 columns: more virtual tokens than one token block of the tile paths (their
    // activations kept in L2), so later blocks start past token 0.
    {
      auto bytes = RandomRows(t, 37, 8192, path.seed + 6);
      const TensorView stored = View(t, 37, 8192, bytes);
      auto packed = PackMatrix(stored);
      for (const TensorView* w : {&stored, &packed->view()}) {
        for (int64_t n : {1, 33, 40, 70}) {
          auto x = Random(static_cast<size_t>(n * 8192), path.seed + 7);
          std::vector<float> want(static_cast<size_t>(n * 37)), got(want.size());
          with_amx(false)([&] { MatMul(*w, x.data(), n, want.data(), pool1); });
          with_amx(true)([&] { MatMul(*w, x.data(), n, got.data(), pool3); });
          ASSERT_TRUE(SameBits(got, want)) << DTypeName(w->dtype) << " 8192 columns n " << n;
        }
      }
    }
    ExpectJobsLaidEndToEndExact(t, path.jobs_cols, {9, 23}, path.seed + 2, pool3, with_amx(false),
                                with_amx(true));
  }
}

TEST(MatMulAmxInt8, KQuantsBitIdenticalToVnniPathAndReference) {
  if (!internal::AmxInt8KUsable() || !MatMulUsesQ8Activations(DType::kQ4_K, 256)) {
    GTEST_SKIP() << "no AMX-INT8 (or no VNNI K-quant path) on this CPU";
  }
  ExpectBitIdenticalToVnniAndReference({.types = {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K},
                                        .set_min_tokens = internal::SetAmxInt8KMinTokensForTest,
                                        .cols = {256, 768},
                                        .jobs_cols = 512,
                                        .seed = 70});
}

TEST(MatMulAmxInt8, Q8TypesBitIdenticalToVnniPathAndReference) {
  if (!internal::AmxInt8KUsable() || !MatMulUsesQ8Activations(DType::kQ8_0, 32)) {
    GTEST_SKIP() << "no AMX-INT8 (or no VNNI 8-bit path) on this CPU";
  }
  // 32, 96 and 160 columns: 1, 3 and 5 blocks, a partial group of the tiles' four blocks.
  ExpectBitIdenticalToVnniAndReference(
      {.types = {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ5_1},
       .set_min_tokens = internal::SetAmxInt8Q8MinTokensForTest,
       .cols = {32, 96, 160, 896},
       .jobs_cols = 544,
       .seed = 80});
}

}  // namespace
}  // namespace kinfer::kernels
