// Kernels against plain scalar references (double accumulation) on random inputs, odd sizes
// and tails included.
// The kernels opt in to Highway's AVX3_DL target (VNNI); so must the target list here.
#define HWY_WANT_AVX3_DL
#include "kernels/ops.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstring>
#include <random>
#include <utility>

#include "kernels/pack.h"
#include "kernels/quant.h"

namespace kinfer::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(Ops, DotF32MatchesDoubleReferenceForOddSizes) {
  for (int64_t n : {1, 3, 7, 8, 15, 16, 31, 33, 64, 100, 1023}) {
    auto a = Random(static_cast<size_t>(n), 1), b = Random(static_cast<size_t>(n), 2);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      mag += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    EXPECT_NEAR(DotF32(a.data(), b.data(), n), ref, 1e-6 * mag + 1e-7) << n;
  }
}

// Random rows of any compute type: random bytes with sane f16 scales, or random values for the
// plain float types.
std::vector<uint8_t> RandomRows(DType t, int64_t rows, int64_t cols, uint32_t seed) {
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

TensorView View(DType t, int64_t rows, int64_t cols, const std::vector<uint8_t>& bytes) {
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

const DType kAllTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                           DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                           DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Column counts per type: odd ones (vector tails) where the type allows any width.
std::vector<int64_t> ColsFor(DType t) {
  int64_t bs = GetDTypeInfo(t).block_size;
  // The last of each is longer than the panel path's k chunk (1024), with a tail.
  if (bs == 1) return {1, 7, 16, 33, 100, 517, 2100};
  if (bs == 32) return {32, 96, 544, 2080};
  return {256, 768, 2304};
}

TEST(Ops, DequantizeRowEqualsReferenceExactly) {
  ForEachTarget([&] {
    for (DType t : kAllTypes) {
      for (int64_t cols : ColsFor(t)) {
        auto bytes = RandomRows(t, 1, cols, 5);
        std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
        DequantizeRow(t, bytes.data(), got.data(), cols);
        DequantizeRowRef(t, bytes.data(), want.data(), cols);
        for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(got[i], want[i]) << DTypeName(t) << " " << i;
      }
    }
  });
}

// Every type, odd row counts, token counts on both sides of the fused/panel switch, against
// a double-precision dot over the reference dequantization.
TEST(Ops, MatMulMatchesDequantizedReference) {
  ThreadPool pool(3);
  ForEachTarget([&] {
    for (DType t : kAllTypes) {
      for (int64_t cols : ColsFor(t)) {
        for (int64_t rows : {1, 5, 67}) {
          auto bytes = RandomRows(t, rows, cols, 9);
          TensorView w = View(t, rows, cols, bytes);
          for (int64_t n : {1, 2, 3, 7, 17}) {
            auto x = Random(static_cast<size_t>(n * cols), 11);
            std::vector<float> y(static_cast<size_t>(n * rows));
            MatMul(w, x.data(), n, y.data(), pool);
            const bool q8 = MatMulUsesQ8Activations(t, cols);
            std::vector<float> yq8;
            if (q8) {  // the 8-bit path: its scalar statement, bit for bit
              yq8.resize(y.size());
              MatMulQ8Ref(w, x.data(), n, yq8.data());
              for (size_t i = 0; i < y.size(); ++i) {
                ASSERT_EQ(y[i], yq8[i])
                    << DTypeName(t) << " rows " << rows << " n " << n << " " << i;
              }
            }
            std::vector<float> row(static_cast<size_t>(cols));
            for (int64_t o = 0; o < rows; ++o) {
              DequantizeRowRef(t, w.row(o), row.data(), cols);
              for (int64_t k = 0; k < n; ++k) {
                double ref = 0, mag = 0, q8_bound = 0;
                for (int64_t i = 0; i < cols; ++i) {
                  ref += static_cast<double>(row[i]) * x[k * cols + i];
                  mag += std::fabs(static_cast<double>(row[i]) * x[k * cols + i]);
                }
                if (q8) {
                  // Rounding x to 8 bits moves each element by at most half a step, amax / 254.
                  for (int64_t b = 0; b < cols; b += 32) {
                    double amax = 0, wsum = 0;
                    for (int64_t i = b; i < b + 32; ++i) {
                      amax = std::max(amax, std::fabs(static_cast<double>(x[k * cols + i])));
                      wsum += std::fabs(static_cast<double>(row[i]));
                    }
                    q8_bound += amax / 254 * wsum;
                  }
                }
                ASSERT_NEAR(y[k * rows + o], ref, 1e-5 * mag + 1e-6 + q8_bound * (1 + 1e-5))
                    << DTypeName(t) << " rows " << rows << " cols " << cols << " n " << n;
              }
            }
          }
        }
      }
    }
  });
}

// A token's outputs are bit-identical whatever else is in the call and however many threads
// share it: alone, in a batch of 2..130 (fused and panel paths), at 1, 2 or 3 threads.
TEST(Ops, MatMulIsBatchAndThreadInvariant) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  ForEachTarget([&] {
    for (DType t : kAllTypes) {
      const int64_t cols = ColsFor(t).back(), rows = 37;
      auto bytes = RandomRows(t, rows, cols, 21);
      TensorView w = View(t, rows, cols, bytes);
      const int64_t max_n = 130;  // over the panel path's token block (96 or 48)
      auto x = Random(static_cast<size_t>(max_n * cols), 23);
      std::vector<float> alone(static_cast<size_t>(max_n * rows));
      for (int64_t k = 0; k < max_n; ++k) {
        MatMul(w, x.data() + k * cols, 1, alone.data() + k * rows, pool1);
      }
      for (int64_t n : {2, 3, 4, 5, 6, 7, 12, 40, 130}) {
        for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
          // Tokens [max_n - n, max_n): the last token sits at a different place in each batch.
          std::vector<float> y(static_cast<size_t>(n * rows));
          MatMul(w, x.data() + (max_n - n) * cols, n, y.data(), *pool);
          for (int64_t k = 0; k < n; ++k) {
            for (int64_t o = 0; o < rows; ++o) {
              ASSERT_EQ(y[k * rows + o], alone[(max_n - n + k) * rows + o])
                  << DTypeName(t) << " n " << n << " threads " << pool->num_threads();
            }
          }
        }
      }
    }
  });
}

// Several matmuls in one region give bit for bit what separate MatMul calls give, with shared
// and distinct inputs and mixed types (8-bit and f32 activation paths side by side).
TEST(Ops, MatMulManyEqualsSeparateMatMuls) {
  ThreadPool pool(2);
  ForEachTarget([&] {
    const int64_t cols = 96;
    const DType types[] = {DType::kQ8_0, DType::kQ4_0, DType::kF16};
    const int64_t rows[] = {37, 5, 70};
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<TensorView> views;
    for (int j = 0; j < 3; ++j) bytes.push_back(RandomRows(types[j], rows[j], cols, 40 + j));
    for (int j = 0; j < 3; ++j) views.push_back(View(types[j], rows[j], cols, bytes[j]));
    for (int64_t n : {1, 3, 9}) {
      auto x1 = Random(static_cast<size_t>(n * cols), 50),
           x2 = Random(static_cast<size_t>(n * cols), 51);
      const float* xs[] = {x1.data(), x1.data(), x2.data()};
      std::vector<std::vector<float>> want(3), got(3);
      std::vector<MatMulJob> jobs;
      for (int j = 0; j < 3; ++j) {
        want[j].resize(static_cast<size_t>(n * rows[j]));
        got[j].resize(static_cast<size_t>(n * rows[j]));
        MatMul(views[j], xs[j], n, want[j].data(), pool);
        jobs.push_back({&views[j], xs[j], got[j].data()});
      }
      MatMulMany(jobs, n, pool);
      for (int j = 0; j < 3; ++j) ASSERT_EQ(got[j], want[j]) << "job " << j << " n " << n;
    }
  });
}

// The packed layouts (pack.h) against the stored one: unpacking gives the stored blocks back,
// rows dequantize to DequantizeRowRef's values, and MatMul and MatMulQ8Ref give bit for bit
// what they give on the stored matrix, on every target, at any batch and thread count, with
// row ranges that split a group of 16 (MatMulMany lays jobs end to end).
TEST(Ops, PackedMatricesComputeExactlyAsStored) {
  ThreadPool pool1(1), pool3(3);
  ForEachTarget([&] {
    for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
      for (int64_t cols : {32, 96, 544}) {
        for (int64_t rows : {1, 5, 16, 37, 67}) {
          auto bytes = RandomRows(t, rows, cols, 60);
          const TensorView w = View(t, rows, cols, bytes);
          auto packed = PackMatrix(w);
          const TensorView& p = packed->view();
          ASSERT_EQ(p.dtype, *PackedTypeOf(t));
          std::vector<uint8_t> blocks(*RowBytes(t, cols));
          std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
          for (int64_t r = 0; r < rows; ++r) {
            UnpackRow(p, r, blocks.data());
            ASSERT_EQ(0, std::memcmp(blocks.data(), w.row(r), blocks.size())) << r;
            DequantizeMatrixRow(p, r, got.data());
            DequantizeRowRef(t, w.row(r), want.data(), cols);
            ASSERT_EQ(got, want) << DTypeName(t) << " row " << r;
          }
          for (int64_t n : {1, 2, 3, 6, 7, 17}) {
            auto x = Random(static_cast<size_t>(n * cols), 61);
            std::vector<float> ys(static_cast<size_t>(n * rows)), yp(ys.size());
            MatMul(w, x.data(), n, ys.data(), pool1);
            for (ThreadPool* pool : {&pool1, &pool3}) {
              MatMul(p, x.data(), n, yp.data(), *pool);
              ASSERT_EQ(yp, ys) << DTypeName(t) << " rows " << rows << " cols " << cols << " n "
                                << n << " threads " << pool->num_threads();
            }
            if (MatMulUsesQ8Activations(p.dtype, cols)) {
              std::vector<float> ref_s(ys.size()), ref_p(ys.size());
              MatMulQ8Ref(w, x.data(), n, ref_s.data());
              MatMulQ8Ref(p, x.data(), n, ref_p.data());
              ASSERT_EQ(ref_p, ref_s);
              ASSERT_EQ(yp, ref_s);
            }
          }
        }
      }
      // Jobs of 37 and 5 rows then the packed one: its rows start mid-group in the region.
      const int64_t cols = 96;
      auto b1 = RandomRows(t, 37, cols, 62), b2 = RandomRows(t, 5, cols, 63),
           b3 = RandomRows(t, 70, cols, 64);
      const TensorView w1 = View(t, 37, cols, b1), w2 = View(t, 5, cols, b2),
                       w3 = View(t, 70, cols, b3);
      auto p1 = PackMatrix(w1), p3 = PackMatrix(w3);
      for (int64_t n : {1, 9}) {
        auto x = Random(static_cast<size_t>(n * cols), 65);
        std::vector<float> want1(static_cast<size_t>(n * 37)), want2(static_cast<size_t>(n * 5)),
            want3(static_cast<size_t>(n * 70));
        MatMul(w1, x.data(), n, want1.data(), pool1);
        MatMul(w2, x.data(), n, want2.data(), pool1);
        MatMul(w3, x.data(), n, want3.data(), pool1);
        std::vector<float> got1(want1.size()), got2(want2.size()), got3(want3.size());
        const MatMulJob jobs[] = {{&p1->view(), x.data(), got1.data()},
                                  {&w2, x.data(), got2.data()},
                                  {&p3->view(), x.data(), got3.data()}};
        MatMulMany(jobs, n, pool3);
        ASSERT_EQ(got1, want1) << n;
        ASSERT_EQ(got2, want2) << n;
        ASSERT_EQ(got3, want3) << n;
      }
    }
  });
}

// ArgMax against a scalar scan for the first largest value: odd sizes, ties planted before
// and after the vector body, NaNs skipped.
TEST(Ops, ArgMaxIsTheFirstLargest) {
  ForEachTarget([&] {
    for (int64_t n : {1, 2, 7, 16, 63, 64, 65, 151936}) {
      for (int trial = 0; trial < 4; ++trial) {
        auto x = Random(static_cast<size_t>(n), 80 + static_cast<uint32_t>(trial));
        if (trial >= 1 && n > 3) {  // ties: the same maximum at two places
          const float top = 10.0f;
          x[static_cast<size_t>(n / 3)] = top;
          x[static_cast<size_t>(n - 1)] = top;
        }
        if (trial == 3) x[0] = std::nanf("");
        int64_t want = -1;
        for (int64_t i = 0; i < n; ++i) {
          if (!std::isnan(x[i]) && (want < 0 || x[i] > x[want])) want = i;
        }
        if (want < 0) want = 0;  // nothing but NaN
        ASSERT_EQ(ArgMax(x.data(), n), want) << n << " trial " << trial;
      }
    }
  });
}

TEST(Ops, SiluMulMatchesFormulaWithTails) {
  for (int64_t n : {1, 5, 16, 37, 100}) {
    auto g = Random(static_cast<size_t>(n), 5, 4.0f), u = Random(static_cast<size_t>(n), 6);
    std::vector<float> out(static_cast<size_t>(n));
    SiluMul(g.data(), u.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      double gi = g[i];
      double want = gi / (1 + std::exp(-gi)) * u[i];
      ASSERT_NEAR(out[i], want, 1e-6 * (1 + std::fabs(want))) << n << " " << i;
    }
  }
}

TEST(Ops, RopeMatchesScalarRotationInBothLayouts) {
  for (bool interleaved : {false, true}) {
    for (int64_t hd : {8, 64, 100}) {
      for (int64_t rot : {hd, hd / 2}) {
        const int64_t heads = 3, half = rot / 2;
        auto x = Random(static_cast<size_t>(heads * hd), 7);
        auto c = Random(static_cast<size_t>(half), 8), s = Random(static_cast<size_t>(half), 9);
        std::vector<float> got = x;
        Rope(got.data(), heads, hd, rot, c.data(), s.data(), interleaved);
        for (int64_t h = 0; h < heads; ++h) {
          const float* v = x.data() + h * hd;
          for (int64_t i = 0; i < half; ++i) {
            int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
            double ra = static_cast<double>(v[a]) * c[i] - static_cast<double>(v[b]) * s[i];
            double rb = static_cast<double>(v[b]) * c[i] + static_cast<double>(v[a]) * s[i];
            ASSERT_NEAR(got[h * hd + a], ra, 1e-6);
            ASSERT_NEAR(got[h * hd + b], rb, 1e-6);
          }
          for (int64_t i = rot; i < hd; ++i) ASSERT_EQ(got[h * hd + i], v[i]);
        }
      }
    }
  }
}

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
TEST(Ops, AttendHeadMatchesDoubleReference) {
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
TEST(Ops, AttendHeadsEqualsAttendHeadPerHead) {
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

TEST(Ops, RmsNormAndSiluMulMatchFormulas) {
  auto x = Random(37, 3), w = Random(37, 4);
  std::vector<float> out(37);
  RmsNorm(x.data(), w.data(), 37, 1e-5f, out.data());
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  double scale = 1.0 / std::sqrt(ss / 37 + 1e-5);
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], x[i] * scale * w[i], 1e-5);
  auto g = Random(37, 5), u = Random(37, 6);
  SiluMul(g.data(), u.data(), 37, out.data());
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-6);
}

TEST(Ops, HalfConversionsRoundTripAndRoundToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Fp32ToFp16(f), h) << h;
  }
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie: to even
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie: to even (up)
  EXPECT_EQ(Fp32ToFp16(70000.0f), 0x7C00);                          // overflow to inf
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: to even
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(Bf16ToFp32(Fp32ToBf16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace kinfer::kernels
