// The AVX-512 decode path for BF16/F16 weights (matmul_amx.cc) against the AMX tile path, bit for
// bit: a token's outputs must not depend on how many tokens share the call (ops.h), and the two
// paths split the work at kAmxVectorMaxTokens. Skipped where AMX bf16 is not usable (the vector
// path is only ever run where the tiles are).
#include <gtest/gtest.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/internal/matmul_paths.h"
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace kinfer::kernels {
namespace {

// Values over a wide range of magnitudes (products that underflow, sums that cancel), with
// zeros of both signs and, in f16, subnormals.
std::vector<float> WideValues(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t kind = rng() % 16;
    if (kind == 0) {
      v[i] = (rng() & 1) ? -0.0f : 0.0f;
    } else if (kind == 1) {
      v[i] = std::ldexp(normal(rng), -20);  // f16 subnormal; tiny products
    } else if (kind == 2) {
      v[i] = std::ldexp(normal(rng), static_cast<int>(rng() % 20));
    } else if (kind == 3 && i > 0) {
      v[i] = -v[i - 1];  // a pair that cancels
    } else {
      v[i] = normal(rng);
    }
  }
  return v;
}

std::vector<uint8_t> WideRows(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  const auto v = WideValues(static_cast<size_t>(rows * cols), seed);
  std::vector<uint8_t> bytes(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = t == DType::kF16 ? Fp32ToFp16(v[i]) : Fp32ToBf16(v[i]);
    std::memcpy(&bytes[i * 2], &h, 2);
  }
  return bytes;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

#if defined(__x86_64__)
#define KINFER_TEST_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,fma")))

float Bf16ToF32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// c (16 x 16 f32) += a (16 x 32 bf16) . b (16 pairs x 16 columns x 2 bf16) on the tiles.
KINFER_TEST_AMX void TileDot(const uint16_t* a, const uint16_t* b, float* c) {
  alignas(64) unsigned char cfg[64] = {};
  cfg[0] = 1;
  for (int t = 0; t < 8; ++t) {
    cfg[16 + 2 * t] = 64;
    cfg[48 + t] = 16;
  }
  __asm__ volatile("" : : "r"(cfg) : "memory");
  _tile_loadconfig(cfg);
  _tile_loadd(0, c, 64);
  _tile_loadd(4, a, 64);
  _tile_loadd(6, b, 64);
  _tile_dpbf16ps(0, 4, 6);
  _tile_stored(0, c, 64);
  _tile_release();
}

// The arithmetic matmul_amx.cc's vector path reproduces: E and O, the even and the odd products
// each summed in order from +0 by FMAs, then c + (E + O), with FTZ and DAZ.
KINFER_TEST_AMX float ModelDot(const uint16_t* a, const uint16_t* b, int m, int n, float c) {
  __m128 e = _mm_setzero_ps(), o = _mm_setzero_ps();
  for (int k = 0; k < 16; ++k) {
    e = _mm_fmadd_ss(_mm_set_ss(Bf16ToF32(a[m * 32 + 2 * k])),
                     _mm_set_ss(Bf16ToF32(b[k * 32 + 2 * n])), e);
    o = _mm_fmadd_ss(_mm_set_ss(Bf16ToF32(a[m * 32 + 2 * k + 1])),
                     _mm_set_ss(Bf16ToF32(b[k * 32 + 2 * n + 1])), o);
  }
  return _mm_cvtss_f32(_mm_add_ss(_mm_set_ss(c), _mm_add_ss(e, o)));
}

// TDPBF16PS against that statement, bit for bit, on random tiles of several kinds: moderate
// values, exponents over the whole range (overflow to inf and NaN), subnormal inputs and zeros,
// products near the underflow threshold, pairs that cancel, accumulators of both zero signs.
TEST(AmxBf16, TileDotProductIsTwoFmaChainsThenAdd) {
  if (!internal::UsesAmxBf16(DType::kBF16, 32)) GTEST_SKIP() << "AMX bf16 is not usable here";
  std::mt19937_64 rng(7);
  auto value = [&](int kind) -> uint16_t {
    const uint32_t sign = (rng() & 1) << 15, mant = rng() & 0x7F;
    uint32_t exp = 127 + static_cast<uint32_t>(rng() % 9) - 4;
    if (kind == 1) exp = 1 + rng() % 254;
    if (kind == 2) exp = rng() % 6 == 0 ? 0 : 127 + static_cast<uint32_t>(rng() % 41) - 20;
    if (kind == 3) exp = rng() % 4 == 0 ? 0 : 1 + rng() % 40;
    return static_cast<uint16_t>(sign | exp << 7 | mant);
  };
  const unsigned int csr = _mm_getcsr();
  int64_t compared = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const int kind = trial % 4;
    alignas(64) uint16_t a[16 * 32], b[16 * 32];
    alignas(64) float c[256], c0[256];
    for (uint16_t& v : a) v = value(kind);
    for (uint16_t& v : b) v = value(kind);
    if (trial % 3 == 0) {  // odd products cancel even ones (up to the last bit)
      for (int i = 0; i < 16 * 16; ++i) {
        a[2 * i + 1] = static_cast<uint16_t>((a[2 * i] ^ 0x8000) ^ (rng() & 1));
        b[2 * i + 1] = b[2 * i];
      }
    }
    for (int i = 0; i < 256; ++i) {
      c0[i] = trial % 4 == 0 ? 0.0f : trial % 4 == 1 ? -0.0f : Bf16ToF32(value(kind)) * 1.00390625f;
      c[i] = c0[i];
    }
    TileDot(a, b, c);
    _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
    for (int m = 0; m < 16; ++m) {
      for (int n = 0; n < 16; ++n) {
        const float want = ModelDot(a, b, m, n, c0[m * 16 + n]), got = c[m * 16 + n];
        ++compared;
        if (std::isnan(want) && std::isnan(got)) continue;
        uint32_t wb, gb;
        std::memcpy(&wb, &want, 4);
        std::memcpy(&gb, &got, 4);
        if (wb != gb) _mm_setcsr(csr);
        ASSERT_EQ(wb, gb) << "trial " << trial << " m " << m << " n " << n;
      }
    }
    _mm_setcsr(csr);
  }
  EXPECT_EQ(compared, 2000 * 256);
}
#endif

// The vector path alone for 1-5 and 16 tokens (its groups of up to 4), and the dispatch up to
// one past the switch; F16 and BF16, stored and packed, odd row counts, row ranges that split
// groups of 16 (as threads do), values of wide range with zeros of both signs: the tile path's
// bits.
TEST(AmxBf16, VectorPathGivesTheTilesBits) {
  if (!internal::UsesAmxBf16(DType::kBF16, 32)) GTEST_SKIP() << "AMX bf16 is not usable here";
  for (DType t : {DType::kF16, DType::kBF16}) {
    for (int64_t cols : {32, 96, 544, 2080}) {
      for (int64_t rows : {1, 5, 16, 37, 67}) {
        auto bytes = WideRows(t, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
        const TensorView stored = View(t, rows, cols, bytes);
        auto packed = PackMatrix(stored);
        for (const TensorView* w : {&stored, &packed->view()}) {
          for (int64_t n = 1; n <= 16; ++n) {
            if (n > std::max<int64_t>(5, internal::kAmxVectorMaxTokens + 1) && n != 16) continue;
            const auto x = WideValues(static_cast<size_t>(n * cols), static_cast<uint32_t>(n));
            std::vector<uint16_t> xb(internal::AmxActivationElements(n, cols));
            internal::ToBf16Activations(x.data(), n, cols, xb.data());
            std::vector<float> tile(static_cast<size_t>(n * rows));
            internal::AmxBf16TileRows(*w, xb.data(), n, tile.data(), 0, rows);
            for (int64_t split : {int64_t{0}, int64_t{7}, int64_t{16}, int64_t{23}}) {
              if (split > rows) continue;
              std::vector<float> vec(tile.size(), -1.0f);
              internal::AmxBf16VectorRows(*w, xb.data(), n, vec.data(), 0, split);
              internal::AmxBf16VectorRows(*w, xb.data(), n, vec.data(), split, rows);
              ASSERT_TRUE(SameBits(vec, tile))
                  << DTypeName(w->dtype) << " rows " << rows << " cols " << cols << " n " << n
                  << " split " << split;
              if (n <= internal::kAmxVectorMaxTokens + 1) {  // the dispatch itself
                std::vector<float> y(tile.size(), -1.0f);
                internal::AmxBf16Rows(*w, xb.data(), n, y.data(), 0, split);
                internal::AmxBf16Rows(*w, xb.data(), n, y.data(), split, rows);
                ASSERT_TRUE(SameBits(y, tile)) << DTypeName(w->dtype) << " n " << n;
              }
            }
          }
        }
      }
    }
  }
}

// Through MatMul: one token alone (the vector path) and inside batches that take the tiles give
// the same bits, at 1 and 3 threads, on the packed matrix the model runs.
TEST(AmxBf16, DecodeTokenMatchesBatchedToken) {
  if (!internal::UsesAmxBf16(DType::kBF16, 32)) GTEST_SKIP() << "AMX bf16 is not usable here";
  ThreadPool pool1(1), pool3(3);
  for (DType t : {DType::kF16, DType::kBF16}) {
    const int64_t rows = 83, cols = 1056;
    auto bytes = WideRows(t, rows, cols, 5);
    auto packed = PackMatrix(View(t, rows, cols, bytes));
    const TensorView& w = packed->view();
    const int64_t max_n = 40;
    const auto x = WideValues(static_cast<size_t>(max_n * cols), 6);
    std::vector<float> alone(static_cast<size_t>(max_n * rows));
    for (int64_t k = 0; k < max_n; ++k) {
      MatMul(w, x.data() + k * cols, 1, alone.data() + k * rows, pool1);
    }
    for (int64_t n : {2, 3, 4, 5, 8, 17, 40}) {
      for (ThreadPool* pool : {&pool1, &pool3}) {
        std::vector<float> y(static_cast<size_t>(n * rows));
        MatMul(w, x.data() + (max_n - n) * cols, n, y.data(), *pool);
        ASSERT_EQ(
            0, std::memcmp(y.data(), alone.data() + (max_n - n) * rows, y.size() * sizeof(float)))
            << DTypeName(t) << " n " << n << " threads " << pool->num_threads();
      }
    }
  }
}

}  // namespace
}  // namespace kinfer::kernels
