// LoraAdd against a scalar double-precision reference of y + scale * B (A x), on every SIMD target
// compiled in, for F32/F16/BF16 storage and odd sizes; and its batch invariance: a row's result is
// bit for bit the same alone, grouped with other rows and adapters, and on any number of threads.
#include "kernels/lora.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"

namespace kinfer::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

template <typename F>
void ForEachTarget(F&& body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A matrix stored in `t`, and the f32 values it holds.
struct Stored {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  TensorView view;
};

Stored Store(const std::vector<float>& v, int64_t rows, int64_t cols, DType t) {
  Stored s;
  s.values.resize(v.size());
  if (t == DType::kF32) {
    s.bytes.resize(v.size() * 4);
    std::memcpy(s.bytes.data(), v.data(), s.bytes.size());
    s.values = v;
  } else {
    s.bytes.resize(v.size() * 2);
    auto* p = reinterpret_cast<uint16_t*>(s.bytes.data());
    for (size_t i = 0; i < v.size(); ++i) {
      p[i] = t == DType::kF16 ? Fp32ToFp16(v[i]) : Fp32ToBf16(v[i]);
      s.values[i] = t == DType::kF16 ? Fp16ToFp32(p[i]) : Bf16ToFp32(p[i]);
    }
  }
  s.view.dtype = t;
  s.view.ndim = 2;
  s.view.shape = {rows, cols, 0, 0};
  s.view.data = s.bytes.data();
  s.view.nbytes = s.bytes.size();
  return s;
}

struct Adapter {
  Stored a, bt;
  LoraMatrices m;
};

Adapter MakeAdapter(int64_t rank, int64_t in, int64_t out, DType t, uint32_t seed, float scale) {
  Adapter ad;
  ad.a = Store(Random(static_cast<size_t>(rank * in), seed, 0.3f), rank, in, t);
  ad.bt = Store(Random(static_cast<size_t>(rank * out), seed + 1, 0.3f), rank, out, t);
  ad.m.a = ad.a.view;
  ad.m.bt = ad.bt.view;
  ad.m.scale = scale;
  return ad;
}

// y_ref[t] = y[t] + scale * B (A x_t) in double.
void Reference(const Adapter& ad, const float* x, int64_t in, double* y, int64_t out) {
  const int64_t rank = ad.m.rank();
  std::vector<double> h(static_cast<size_t>(rank));
  for (int64_t j = 0; j < rank; ++j) {
    double s = 0;
    for (int64_t i = 0; i < in; ++i) s += double{ad.a.values[j * in + i]} * x[i];
    h[j] = s;
  }
  for (int64_t o = 0; o < out; ++o) {
    double s = 0;
    for (int64_t j = 0; j < rank; ++j) s += h[j] * ad.bt.values[j * out + o];
    y[o] += ad.m.scale * s;
  }
}

TEST(Lora, AddMatchesDoubleReferenceForEveryStorageTypeAndOddSizes) {
  ThreadPool pool(3);
  ForEachTarget([&] {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (auto [rank, in, out] : {std::array<int64_t, 3>{1, 7, 5},
                                   {4, 32, 48},
                                   {8, 33, 100},
                                   {16, 896, 128},
                                   {3, 100, 1031}}) {
        SCOPED_TRACE(testing::Message()
                     << DTypeName(t) << " rank " << rank << " in " << in << " out " << out);
        Adapter ad = MakeAdapter(rank, in, out, t, 7, 0.5f);
        const int64_t T = 5;
        auto x = Random(static_cast<size_t>(T * in), 3);
        auto y = Random(static_cast<size_t>(T * out), 4);
        std::vector<double> ref(y.begin(), y.end());
        const int32_t rows[] = {0, 2, 3};  // rows 1 and 4 use no adapter
        for (int32_t r : rows) Reference(ad, x.data() + r * in, in, ref.data() + r * out, out);
        LoraGroup g{&ad.m, rows};
        std::vector<float> scratch(static_cast<size_t>(LoraScratchSize({&g, 1})));
        LoraAdd({&g, 1}, x.data(), in, y.data(), out, scratch.data(), pool);
        for (int64_t i = 0; i < T * out; ++i) {
          const double tol = 1e-5 * (1 + std::fabs(ref[i])) * std::sqrt(double(in + rank));
          ASSERT_NEAR(y[i], ref[i], tol) << "element " << i;
        }
      }
    }
  });
}

TEST(Lora, RowResultDoesNotDependOnGroupsRowsOrThreads) {
  ForEachTarget([&] {
    const int64_t in = 200, out = 301, T = 9;
    Adapter a1 = MakeAdapter(8, in, out, DType::kF32, 11, 2.0f);
    Adapter a2 = MakeAdapter(16, in, out, DType::kBF16, 21, 0.25f);
    Adapter a3 = MakeAdapter(4, in, out, DType::kF16, 31, 1.0f);
    const Adapter* of_row[T] = {&a1, nullptr, &a2, &a1, &a3, &a2, nullptr, &a1, &a3};
    auto x = Random(static_cast<size_t>(T * in), 5);
    auto y0 = Random(static_cast<size_t>(T * out), 6);

    // Each row alone, on one thread.
    std::vector<float> alone = y0;
    ThreadPool one(1);
    for (int32_t t = 0; t < T; ++t) {
      if (!of_row[t]) continue;
      LoraGroup g{&of_row[t]->m, {&t, 1}};
      std::vector<float> scratch(static_cast<size_t>(LoraScratchSize({&g, 1})));
      LoraAdd({&g, 1}, x.data(), in, alone.data(), out, scratch.data(), one);
    }
    // Everything in one call, grouped by adapter, on several thread counts.
    const std::vector<int32_t> r1 = {0, 3, 7}, r2 = {2, 5}, r3 = {4, 8};
    const LoraGroup groups[] = {{&a2.m, r2}, {&a1.m, r1}, {&a3.m, r3}};
    for (int threads : {1, 2, 5}) {
      ThreadPool pool(threads);
      std::vector<float> y = y0;
      std::vector<float> scratch(static_cast<size_t>(LoraScratchSize(groups)));
      LoraAdd(groups, x.data(), in, y.data(), out, scratch.data(), pool);
      ASSERT_EQ(0, std::memcmp(y.data(), alone.data(), y.size() * sizeof(float)))
          << threads << " threads";
    }
  });
}

TEST(Lora, ShapeCheckRejectsMismatchedMatrices) {
  Adapter ad = MakeAdapter(4, 16, 8, DType::kF32, 1, 1.0f);
  EXPECT_TRUE(LoraShapeOk(ad.m, 16, 8));
  EXPECT_FALSE(LoraShapeOk(ad.m, 17, 8));
  EXPECT_FALSE(LoraShapeOk(ad.m, 16, 9));
  LoraMatrices bad = ad.m;
  bad.bt.shape[0] = 5;
  EXPECT_FALSE(LoraShapeOk(bad, 16, 8));
  bad = ad.m;
  bad.a.dtype = DType::kQ8_0;
  EXPECT_FALSE(LoraShapeOk(bad, 16, 8));
}

}  // namespace
}  // namespace kinfer::kernels
