// The CUDA kernels against the CPU kernels (kernels/ops.h, kernels/quant.h) on random inputs.
// Tolerances, as ||gpu - ref|| / ||ref|| unless bit-exactness is claimed:
// - embedding rows: bit-exact with DequantizeRowRef (the same operations, no FMA);
// - matmul: 1e-5 against an f64 sum over the f16-rounded operands the kernel multiplies (only f32
//   accumulation order differs), 1e-2 against the CPU's f32 MatMul (the f16 rounding of
//   activations and weights, 2^-11 each; the CPU may itself round activations to 8 bits);
//   bit-exact between batch sizes (batch invariance);
// - RMSNorm, QKV bias/norm/RoPE: 1e-6 (f32 rounding; sums of squares in f64 on both);
// - SiLU-gate: 2e-3 (the f16 output, and the CPU's polynomial exp);
// - paged attention: 1e-5 (online against two-pass softmax).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "core/thread_pool.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/layer_ops.h"
#include "kernels/cuda/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace kinfer::kernels::cuda {
namespace {

using kinfer::testing::DeviceArray;
using kinfer::testing::RandomFloats;
using kinfer::testing::RelError;

const DType kAllTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,
                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                           DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

void PutHalf(uint8_t* p, float v) {
  const uint16_t h = Fp32ToFp16(v);
  std::memcpy(p, &h, 2);
}

// A random [rows, cols] matrix in type t: random quants, sane scales.
std::vector<uint8_t> RandomMatrix(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t rb = *RowBytes(t, cols);
  std::vector<uint8_t> m(static_cast<size_t>(rows) * rb);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> u(0, 1);
  for (auto& b : m) b = static_cast<uint8_t>(byte(rng));
  const DTypeInfo info = GetDTypeInfo(t);
  const size_t nblocks = m.size() / info.block_bytes;
  for (size_t i = 0; i < nblocks; ++i) {
    uint8_t* b = m.data() + i * info.block_bytes;
    switch (t) {
      case DType::kF32: {
        const float v = u(rng) * 0.2f - 0.1f;
        std::memcpy(b, &v, 4);
        break;
      }
      case DType::kF16:
        PutHalf(b, u(rng) * 0.2f - 0.1f);
        break;
      case DType::kBF16: {
        const uint16_t h = Fp32ToBf16(u(rng) * 0.2f - 0.1f);
        std::memcpy(b, &h, 2);
        break;
      }
      case DType::kQ4_0:
      case DType::kQ5_0:
      case DType::kQ8_0:
        PutHalf(b, 0.002f + 0.01f * u(rng));
        break;
      case DType::kQ4_1:
      case DType::kQ5_1:
        PutHalf(b, 0.002f + 0.01f * u(rng));
        PutHalf(b + 2, -0.05f * u(rng));
        break;
      case DType::kQ4_K:
      case DType::kQ5_K:
        PutHalf(b, 0.0005f + 0.002f * u(rng));
        PutHalf(b + 2, 0.0005f * u(rng));
        break;
      case DType::kQ6_K:
        PutHalf(b + 208, 0.0002f + 0.0005f * u(rng));
        break;
      default:
        break;
    }
  }
  return m;
}

float RoundF16(float v) { return Fp16ToFp32(Fp32ToFp16(v)); }

std::vector<uint16_t> ToF16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = Fp32ToFp16(v[i]);
  return h;
}

struct GpuMatrix {
  DeviceArray<uint8_t> bytes;
  DeviceMatrix m;
  GpuMatrix(DType t, int64_t rows, int64_t cols, const std::vector<uint8_t>& host)
      : bytes(host), m{t, rows, cols, *RowBytes(t, cols), bytes.get()} {}
};

struct MatMulCase {
  int64_t rows, cols, tokens;
};

// The references of one matmul case: an f64 sum over the f16-rounded operands (what the GPU
// computes, up to f32 accumulation) and the CPU backend's MatMul.
struct MatMulRefs {
  std::vector<uint8_t> w;
  std::vector<float> x, exact, cpu;
};

MatMulRefs MakeMatMulRefs(DType t, const MatMulCase& c, std::mt19937& rng, ThreadPool& pool) {
  MatMulRefs r;
  r.w = RandomMatrix(t, c.rows, c.cols, rng);
  r.x = RandomFloats(static_cast<size_t>(c.tokens * c.cols), rng);
  std::vector<float> wf(static_cast<size_t>(c.rows * c.cols));
  const size_t rb = *RowBytes(t, c.cols);
  for (int64_t i = 0; i < c.rows; ++i) {
    DequantizeRowRef(t, r.w.data() + i * rb, wf.data() + i * c.cols, c.cols);
  }
  r.exact.resize(static_cast<size_t>(c.tokens * c.rows));
  for (int64_t i = 0; i < c.tokens; ++i) {
    for (int64_t o = 0; o < c.rows; ++o) {
      double s = 0;
      for (int64_t k = 0; k < c.cols; ++k) {
        s += static_cast<double>(RoundF16(r.x[i * c.cols + k])) * RoundF16(wf[o * c.cols + k]);
      }
      r.exact[static_cast<size_t>(i * c.rows + o)] = static_cast<float>(s);
    }
  }
  TensorView tv;
  tv.dtype = t;
  tv.ndim = 2;
  tv.shape = {c.rows, c.cols, 0, 0};
  tv.data = r.w.data();
  tv.nbytes = r.w.size();
  r.cpu.resize(r.exact.size());
  kernels::MatMul(tv, r.x.data(), c.tokens, r.cpu.data(), pool);
  return r;
}

std::vector<MatMulCase> MatMulCases(DType t) {
  // The last: a long K, two steps per K part and a short last part (decode's down projection).
  std::vector<MatMulCase> cases = {{200, 512, 1}, {131, 768, 7}, {70, 256, 77}, {96, 4864, 3}};
  if (GetDTypeInfo(t).block_size == 1) cases.push_back({33, 172, 19});  // K not a tile multiple
  return cases;
}

// Host side, no GPU needed: the f16 arithmetic the GPU kernel does stays within the 1e-2 that
// the GPU test allows against the CPU backend, for every type and shape it uses.
TEST(CudaKernels, F16OperandRoundingStaysWithinTheCpuTolerance) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (DType t : kAllTypes) {
    for (const MatMulCase& c : MatMulCases(t)) {
      SCOPED_TRACE(fmt::format("{} [{}, {}] x {} tokens", DTypeName(t), c.rows, c.cols, c.tokens));
      const MatMulRefs r = MakeMatMulRefs(t, c, rng, pool);
      EXPECT_LT(RelError(r.exact, r.cpu), 1e-2);
    }
  }
}

TEST(CudaKernels, MatMulMatchesCpuForEveryTypeAndIsBatchInvariant) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (DType t : kAllTypes) {
    for (const MatMulCase& c : MatMulCases(t)) {
      SCOPED_TRACE(fmt::format("{} [{}, {}] x {} tokens", DTypeName(t), c.rows, c.cols, c.tokens));
      const MatMulRefs r = MakeMatMulRefs(t, c, rng, pool);
      GpuMatrix gw(t, c.rows, c.cols, r.w);
      DeviceArray<uint16_t> gx(ToF16(r.x));
      // K in one part, and in as many as a 132-multiprocessor GPU would take for decode.
      for (int splits : {1, MatMulSplits(c.rows, c.cols, 264)}) {
        SCOPED_TRACE(fmt::format("{} K parts", splits));
        gw.m.splits = splits;
        DeviceArray<float> ws(std::max<size_t>(MatMulWorkspaceFloats(gw.m, c.tokens), 1));
        DeviceArray<float> gy(static_cast<size_t>(c.tokens * c.rows));
        gy.Poison();
        MatMul(gw.m, gx.get(), c.tokens, gy.get(), false, ws.get(), nullptr);
        KINFER_CUDA_OK(cudaGetLastError());
        const std::vector<float> y = gy.Download();
        EXPECT_LT(RelError(y, r.exact), 1e-5);
        EXPECT_LT(RelError(y, r.cpu), 1e-2);

        // Batch invariance: each token alone gives its row of the batched result, bit for bit.
        for (int64_t i : {int64_t{0}, c.tokens / 2, c.tokens - 1}) {
          DeviceArray<uint16_t> one(
              ToF16(std::vector<float>(r.x.begin() + i * c.cols, r.x.begin() + (i + 1) * c.cols)));
          DeviceArray<float> y1(static_cast<size_t>(c.rows));
          y1.Poison();
          MatMul(gw.m, one.get(), 1, y1.get(), false, ws.get(), nullptr);
          const std::vector<float> got = y1.Download();
          for (int64_t o = 0; o < c.rows; ++o) {
            ASSERT_EQ(got[static_cast<size_t>(o)], y[static_cast<size_t>(i * c.rows + o)])
                << "token " << i << " row " << o;
          }
        }
      }
    }
  }
}

TEST(CudaKernels, MatMulAccumulatesIntoTheOutput) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(8);
  const int64_t rows = 96, cols = 256, T = 5;
  const std::vector<uint8_t> w = RandomMatrix(DType::kQ8_0, rows, cols, rng);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(T * cols), rng);
  const std::vector<float> y0 = RandomFloats(static_cast<size_t>(T * rows), rng);
  GpuMatrix gw(DType::kQ8_0, rows, cols, w);
  DeviceArray<uint16_t> gx(ToF16(x));
  for (int splits : {1, 2}) {
    gw.m.splits = splits;
    DeviceArray<float> ws(std::max<size_t>(MatMulWorkspaceFloats(gw.m, T), 1));
    DeviceArray<float> plain(static_cast<size_t>(T * rows)), acc(y0);
    MatMul(gw.m, gx.get(), T, plain.get(), false, ws.get(), nullptr);
    MatMul(gw.m, gx.get(), T, acc.get(), true, ws.get(), nullptr);
    const std::vector<float> p = plain.Download(), a = acc.Download();
    for (size_t i = 0; i < p.size(); ++i) ASSERT_EQ(a[i], y0[i] + p[i]) << splits << " " << i;
  }
}

TEST(CudaKernels, EmbeddingRowsAreTheReferenceDequantization) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(9);
  for (DType t : kAllTypes) {
    SCOPED_TRACE(DTypeName(t));
    const int64_t rows = 50, cols = 512;
    const std::vector<uint8_t> w = RandomMatrix(t, rows, cols, rng);
    const std::vector<int32_t> tokens = {3, 0, 49, 17, 17, 8};
    GpuMatrix gw(t, rows, cols, w);
    DeviceArray<int32_t> gt(tokens);
    DeviceArray<float> gx(tokens.size() * cols);
    gx.Poison();
    EmbedRows(gw.m, gt.get(), static_cast<int64_t>(tokens.size()), gx.get(), nullptr);
    const std::vector<float> got = gx.Download();
    std::vector<float> ref(static_cast<size_t>(cols));
    const size_t rb = *RowBytes(t, cols);
    for (size_t i = 0; i < tokens.size(); ++i) {
      DequantizeRowRef(t, w.data() + tokens[i] * rb, ref.data(), cols);
      for (int64_t k = 0; k < cols; ++k) {
        ASSERT_EQ(got[i * cols + k], ref[static_cast<size_t>(k)]) << "row " << i << " col " << k;
      }
    }
  }
}

TEST(CudaKernels, RmsNormRowsMatchesCpu) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(10);
  const int64_t dim = 896, n = 9;
  const std::vector<float> x = RandomFloats(static_cast<size_t>(n * dim), rng, -3, 3);
  const std::vector<float> w = RandomFloats(static_cast<size_t>(dim), rng, 0.5, 1.5);
  const std::vector<int32_t> rows = {8, 2, 2, 0};
  DeviceArray<float> gx(x), gw(w), out32(rows.size() * dim);
  DeviceArray<uint16_t> out16(rows.size() * dim);
  DeviceArray<int32_t> grows(rows);
  out32.Poison();
  RmsNormRows(gx.get(), grows.get(), static_cast<int64_t>(rows.size()), dim, gw.get(), 1e-6f,
              out16.get(), out32.get(), nullptr);
  const std::vector<float> got = out32.Download();
  const std::vector<uint16_t> got16 = out16.Download();
  std::vector<float> ref(got.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    kernels::RmsNorm(x.data() + rows[r] * dim, w.data(), dim, 1e-6f, ref.data() + r * dim);
  }
  EXPECT_LT(RelError(got, ref), 1e-6);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got16[i], Fp32ToFp16(got[i])) << i;
}

TEST(CudaKernels, SiluMulMatchesCpu) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(11);
  const int64_t n = 4864 * 3;
  const std::vector<float> g = RandomFloats(static_cast<size_t>(n), rng, -8, 8);
  const std::vector<float> u = RandomFloats(static_cast<size_t>(n), rng, -4, 4);
  DeviceArray<float> gg(g), gu(u);
  DeviceArray<uint16_t> out(static_cast<size_t>(n));
  SiluMul(gg.get(), gu.get(), n, out.get(), nullptr);
  const std::vector<uint16_t> got16 = out.Download();
  std::vector<float> got(got16.size()), ref(static_cast<size_t>(n));
  for (size_t i = 0; i < got.size(); ++i) got[i] = Fp16ToFp32(got16[i]);
  kernels::SiluMul(g.data(), u.data(), n, ref.data());
  EXPECT_LT(RelError(got, ref), 2e-3);
}

TEST(CudaKernels, QkvBiasNormRopeAndCacheWritesMatchCpu) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(12);
  for (bool interleaved : {false, true}) {
    for (bool qk_norm : {false, true}) {
      SCOPED_TRACE(fmt::format("interleaved {} qk_norm {}", interleaved, qk_norm));
      const int64_t nh = 14, nkv = 2, hd = 64, rot = 64, half = rot / 2, T = 6, bs = 16;
      const int64_t blocks = 8, positions = 128;
      const std::vector<int32_t> pos = {0, 1, 2, 37, 5, 100};
      // Two sequences: tokens 0..2 and 3 use table A, 4..5 table B.
      const std::vector<int32_t> tables = {5, 1, 7, 2, 0, 3, 6, 4, 3, 6, 4, 0, 5, 1, 7, 2};
      const std::vector<int32_t> table_off = {0, 0, 0, 0, 8, 8};
      std::vector<float> q = RandomFloats(static_cast<size_t>(T * nh * hd), rng, -2, 2);
      std::vector<float> k = RandomFloats(static_cast<size_t>(T * nkv * hd), rng, -2, 2);
      std::vector<float> v = RandomFloats(static_cast<size_t>(T * nkv * hd), rng, -2, 2);
      const std::vector<float> bq = RandomFloats(static_cast<size_t>(nh * hd), rng);
      const std::vector<float> bk = RandomFloats(static_cast<size_t>(nkv * hd), rng);
      const std::vector<float> bv = RandomFloats(static_cast<size_t>(nkv * hd), rng);
      const std::vector<float> qn = RandomFloats(static_cast<size_t>(hd), rng, 0.5, 1.5);
      const std::vector<float> kn = RandomFloats(static_cast<size_t>(hd), rng, 0.5, 1.5);
      std::vector<float> cs(static_cast<size_t>(positions * half)), sn(cs.size());
      for (int64_t p = 0; p < positions; ++p) {
        for (int64_t i = 0; i < half; ++i) {
          const double a = static_cast<double>(p) * std::pow(10000.0, -2.0 * i / rot);
          cs[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(a));
          sn[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(a));
        }
      }
      DeviceArray<float> gq(q), gk(k), gv(v), gbq(bq), gbk(bk), gbv(bv), gqn(qn), gkn(kn), gcs(cs),
          gsn(sn);
      DeviceArray<int32_t> gpos(pos), gtab(tables), goff(table_off),
          glo(std::vector<int32_t>(static_cast<size_t>(T), 0));
      const size_t cache_elems = static_cast<size_t>(blocks * nkv * bs * hd);
      DeviceArray<uint16_t> kc(cache_elems), vc(cache_elems);
      kc.Poison();
      vc.Poison();
      QkvParams p;
      p.q = gq.get(), p.k = gk.get(), p.v = gv.get();
      p.bq = gbq.get(), p.bk = gbk.get(), p.bv = gbv.get();
      p.q_norm = qk_norm ? gqn.get() : nullptr;
      p.k_norm = qk_norm ? gkn.get() : nullptr;
      p.eps = 1e-6f;
      p.cos = gcs.get(), p.sin = gsn.get(), p.rot = rot, p.interleaved = interleaved;
      p.heads = nh, p.kv_heads = nkv, p.head_dim = hd;
      TokenTables tt{gpos.get(), glo.get(), goff.get(), gtab.get()};
      PagedCache cache{kc.get(), vc.get(), nkv * bs * hd, bs, true};
      QkvRopeStore(p, tt, cache, T, nullptr);
      KINFER_CUDA_OK(cudaGetLastError());
      const std::vector<float> got_q = gq.Download();
      const std::vector<uint16_t> got_k = kc.Download(), got_v = vc.Download();

      // CPU: the decoder's sequence of kernels.
      for (int64_t t = 0; t < T; ++t) {
        kernels::Add(q.data() + t * nh * hd, bq.data(), nh * hd);
        kernels::Add(k.data() + t * nkv * hd, bk.data(), nkv * hd);
        kernels::Add(v.data() + t * nkv * hd, bv.data(), nkv * hd);
        if (qk_norm) {
          for (int64_t h = 0; h < nh; ++h) {
            float* r = q.data() + (t * nh + h) * hd;
            kernels::RmsNorm(r, qn.data(), hd, 1e-6f, r);
          }
          for (int64_t h = 0; h < nkv; ++h) {
            float* r = k.data() + (t * nkv + h) * hd;
            kernels::RmsNorm(r, kn.data(), hd, 1e-6f, r);
          }
        }
        const float* c = cs.data() + pos[static_cast<size_t>(t)] * half;
        const float* s = sn.data() + pos[static_cast<size_t>(t)] * half;
        kernels::Rope(q.data() + t * nh * hd, nh, hd, rot, c, s, interleaved);
        kernels::Rope(k.data() + t * nkv * hd, nkv, hd, rot, c, s, interleaved);
      }
      EXPECT_LT(RelError(got_q, q), 1e-6);
      std::vector<float> kk, kref, vv, vref;
      for (int64_t t = 0; t < T; ++t) {
        const int32_t p0 = pos[static_cast<size_t>(t)];
        const int32_t b = tables[static_cast<size_t>(table_off[static_cast<size_t>(t)] + p0 / bs)];
        for (int64_t h = 0; h < nkv; ++h) {
          for (int64_t d = 0; d < hd; ++d) {
            const size_t off = static_cast<size_t>(b * nkv * bs * hd + (h * bs + p0 % bs) * hd + d);
            kk.push_back(Fp16ToFp32(got_k[off]));
            kref.push_back(k[static_cast<size_t>((t * nkv + h) * hd + d)]);
            vv.push_back(Fp16ToFp32(got_v[off]));
            vref.push_back(v[static_cast<size_t>((t * nkv + h) * hd + d)]);
          }
        }
      }
      EXPECT_LT(RelError(kk, kref), 5e-4);  // f16 cache
      EXPECT_LT(RelError(vv, vref), 5e-4);
    }
  }
}

TEST(CudaKernels, PagedAttentionMatchesCpu) {
  KINFER_REQUIRE_GPU();
  std::mt19937 rng(13);
  struct Shape {
    int64_t nh, nkv, hd;
    bool f16;
    int32_t window;
  };
  for (const Shape& sh : {Shape{14, 2, 64, true, 0}, Shape{32, 8, 128, true, 0},
                          Shape{8, 8, 256, false, 0}, Shape{4, 1, 96, true, 50}}) {
    SCOPED_TRACE(fmt::format("heads {} kv {} dim {} f16 {} window {}", sh.nh, sh.nkv, sh.hd, sh.f16,
                             sh.window));
    const int64_t bs = 16, blocks = 40;
    const int64_t stride = sh.nkv * bs * sh.hd;
    const size_t elems = static_cast<size_t>(blocks * stride);
    const std::vector<float> kf = RandomFloats(elems, rng, -1, 1);
    const std::vector<float> vf = RandomFloats(elems, rng, -1, 1);
    std::vector<uint16_t> k16 = ToF16(kf), v16 = ToF16(vf);
    // Sequence A: 300 cached positions, a 5-token chunk at 300..304; sequence B: decode at 70;
    // sequence C: decode at 1500 (splits of two tiles), its table reusing blocks.
    std::vector<int32_t> table_a(20), table_b(5), table_c(94);
    std::vector<int32_t> perm(static_cast<size_t>(blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::copy_n(perm.begin(), 20, table_a.begin());
    std::copy_n(perm.begin() + 20, 5, table_b.begin());
    for (size_t i = 0; i < table_c.size(); ++i) table_c[i] = perm[(i * 7) % perm.size()];
    std::vector<int32_t> tables = table_a;
    tables.insert(tables.end(), table_b.begin(), table_b.end());
    tables.insert(tables.end(), table_c.begin(), table_c.end());
    const std::vector<int32_t> pos = {300, 301, 302, 303, 304, 70, 1500};
    const std::vector<int32_t> off = {0, 0, 0, 0, 0, 20, 25};
    const int64_t T = 7;
    std::vector<int32_t> lo(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      lo[static_cast<size_t>(t)] =
          sh.window > 0 ? std::max(0, pos[static_cast<size_t>(t)] - sh.window + 1) : 0;
    }
    const std::vector<float> q = RandomFloats(static_cast<size_t>(T * sh.nh * sh.hd), rng, -1, 1);
    DeviceArray<float> gq(q), out(static_cast<size_t>(T * sh.nh * sh.hd));
    DeviceArray<float> kc32(kf), vc32(vf);
    DeviceArray<uint16_t> kc16(k16), vc16(v16);
    DeviceArray<int32_t> gpos(pos), glo(lo), goff(off), gtab(tables);
    DeviceArray<uint8_t> ws(AttentionWorkspaceBytes(T, sh.nh, sh.hd));
    out.Poison();
    AttentionParams ap;
    ap.q = gq.get();
    ap.out32 = out.get();
    ap.heads = sh.nh, ap.kv_heads = sh.nkv, ap.head_dim = sh.hd;
    ap.scale = 1.0f / std::sqrt(static_cast<float>(sh.hd));
    ap.workspace = reinterpret_cast<float*>(ws.get());
    TokenTables tt{gpos.get(), glo.get(), goff.get(), gtab.get()};
    PagedCache cache;
    cache.keys = sh.f16 ? static_cast<void*>(kc16.get()) : kc32.get();
    cache.values = sh.f16 ? static_cast<void*>(vc16.get()) : vc32.get();
    cache.block_stride = stride;
    cache.block_size = bs;
    cache.f16 = sh.f16;
    PagedAttention(ap, tt, cache, T, nullptr);
    KINFER_CUDA_OK(cudaGetLastError());
    const std::vector<float> got = out.Download();

    std::vector<float> ref(got.size()), scores;
    const int64_t group = sh.nh / sh.nkv;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t kvh = 0; kvh < sh.nkv; ++kvh) {
        PagedKvView view;
        view.k_base = sh.f16 ? static_cast<const void*>(k16.data()) : kf.data();
        view.v_base = sh.f16 ? static_cast<const void*>(v16.data()) : vf.data();
        view.block_stride = stride;
        view.head_offset = kvh * bs * sh.hd;
        view.block_size = bs;
        view.block_table = tables.data() + off[static_cast<size_t>(t)];
        view.f16 = sh.f16;
        scores.resize(static_cast<size_t>(group * (pos[static_cast<size_t>(t)] + 1)));
        const int64_t h = kvh * group;
        kernels::AttendHeads(q.data() + (t * sh.nh + h) * sh.hd, group, sh.hd, view,
                             lo[static_cast<size_t>(t)], pos[static_cast<size_t>(t)], ap.scale,
                             scores.data(), ref.data() + (t * sh.nh + h) * sh.hd);
      }
    }
    EXPECT_LT(RelError(got, ref), 1e-5);
  }
}

}  // namespace
}  // namespace kinfer::kernels::cuda
