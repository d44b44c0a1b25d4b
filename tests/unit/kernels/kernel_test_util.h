// Helpers the kernel tests share: random inputs, random weight rows of every type, a loop over
// every SIMD target this CPU supports, and jobs laid end to end in one MatMulMany region.
#pragma once

// The kernels opt in to Highway's AVX3_DL target (VNNI); so must the target list here. Include
// this header before anything else that includes Highway.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kquant.h"
#include "kernels/matmul_q8.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

namespace kinfer::kernels {

inline std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Random rows of any compute type: random bytes with sane f16 scales, or random values for the
// plain float types.
inline std::vector<uint8_t> RandomRows(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  size_t bytes = *RowBytes(t, cols) * static_cast<size_t>(rows);
  std::vector<uint8_t> data(bytes);
  std::mt19937 rng(seed);
  if (t == DType::kF32 || t == DType::kF16 || t == DType::kBF16) {
    auto v = Random(static_cast<size_t>(rows * cols), seed);
    for (size_t i = 0; i < v.size(); ++i) {
      if (t == DType::kF32) {
        std::memcpy(&data[i * 4], &v[i], 4);
      } else {
        uint16_t h = t == DType::kF16 ? Fp32ToFp16(v[i]) : Fp32ToBf16(v[i]);
        std::memcpy(&data[i * 2], &h, 2);
      }
    }
    return data;
  }
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const size_t bb = GetDTypeInfo(t).block_bytes;
  for (size_t off = 0; off < bytes; off += bb) {
    uint16_t d = Fp32ToFp16(0.01f + 0.001f * static_cast<float>(rng() % 100));
    uint16_t m = Fp32ToFp16(-0.05f + 0.001f * static_cast<float>(rng() % 100));
    switch (t) {
      case DType::kQ8_0:
      case DType::kQ4_0:
      case DType::kQ5_0:
        std::memcpy(&data[off], &d, 2);
        break;
      case DType::kQ4_1:
      case DType::kQ5_1:
        std::memcpy(&data[off], &d, 2);
        std::memcpy(&data[off + 2], &m, 2);
        break;
      case DType::kQ4_K:
      case DType::kQ5_K:
        std::memcpy(&data[off], &d, 2);
        std::memcpy(&data[off + 2], &d, 2);
        break;
      case DType::kQ6_K:
        std::memcpy(&data[off + bb - 2], &d, 2);
        break;
      default:
        break;
    }
  }
  return data;
}

inline TensorView View(DType t, int64_t rows, int64_t cols, const std::vector<uint8_t>& bytes) {
  TensorView w;
  w.dtype = t;
  w.ndim = 2;
  w.shape = {rows, cols, 0, 0};
  w.data = bytes.data();
  w.nbytes = bytes.size();
  return w;
}

// Runs `body` once per SIMD target compiled in and supported here (e.g. AVX3, AVX2, SSE4 on an
// AVX-512 machine), so every target's kernels are checked, not only the best one.
template <typename F>
void ForEachTarget(F&& body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

inline constexpr DType kAllTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                                      DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                                      DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Column counts per type: odd ones (vector tails) where the type allows any width.
inline std::vector<int64_t> ColsFor(DType t) {
  int64_t bs = GetDTypeInfo(t).block_size;
  // The last of each is longer than the panel path's k chunk (1024).
  // 64 and 2080: whole chunks of 32, where BF16/F16 weights take AMX tiles if the CPU has them.
  if (bs == 1) return {1, 7, 16, 33, 64, 100, 517, 2100, 2080};
  if (bs == 32) return {32, 96, 544, 2080};
  return {256, 768, 2304};
}

// The 8-bit activation path's scalar statement for w's type, and the block its activations are
// quantized in.
inline int64_t Q8Ref(const TensorView& w, const float* x, int64_t n, float* y) {
  if (GetDTypeInfo(w.dtype).block_size == kQKK) {
    MatMulQ8KRef(w, x, n, y);
    return kQKK;
  }
  MatMulQ8Ref(w, x, n, y);
  return kQK;
}

// Jobs of 37, 5 and 70 rows of type t laid end to end in one MatMulMany region on `pool`, the
// first and last packed, so the later jobs' rows start mid-group: each job's output must be bit
// for bit what MatMul gives its stored matrix alone on one thread, for every token count in
// `token_counts`. `alone` and `together` each get the call to make (e.g. under a forced path).
template <typename Alone, typename Together>
void ExpectJobsLaidEndToEndExact(DType t, int64_t cols, std::initializer_list<int64_t> token_counts,
                                 uint32_t seed, ThreadPool& pool, Alone&& alone,
                                 Together&& together) {
  const int64_t rows[3] = {37, 5, 70};
  std::vector<uint8_t> bytes[3];
  TensorView stored[3];
  for (int j = 0; j < 3; ++j) {
    bytes[j] = RandomRows(t, rows[j], cols, seed + static_cast<uint32_t>(j));
    stored[j] = View(t, rows[j], cols, bytes[j]);
  }
  auto p0 = PackMatrix(stored[0]), p2 = PackMatrix(stored[2]);
  const TensorView* in_region[3] = {&p0->view(), &stored[1], &p2->view()};
  ThreadPool pool1(1);
  for (int64_t n : token_counts) {
    auto x = Random(static_cast<size_t>(n * cols), seed + 3);
    std::vector<float> want[3], got[3];
    MatMulJob jobs[3];
    for (int j = 0; j < 3; ++j) {
      want[j].resize(static_cast<size_t>(n * rows[j]));
      got[j].resize(want[j].size());
      jobs[j] = {in_region[j], x.data(), got[j].data()};
    }
    alone([&] {
      for (int j = 0; j < 3; ++j) MatMul(stored[j], x.data(), n, want[j].data(), pool1);
    });
    together([&] { MatMulMany(jobs, n, pool); });
    for (int j = 0; j < 3; ++j) {
      ASSERT_EQ(0, std::memcmp(got[j].data(), want[j].data(), want[j].size() * sizeof(float)))
          << DTypeName(t) << " job " << j << " n " << n;
    }
  }
}

}  // namespace kinfer::kernels
