// LoRA kernel microbenchmarks, single-threaded: LoraAdd for a batch of tokens spread over some
// adapters, beside the base MatMul of the same projection (Q4_0 as the loader packs it), so the
// overhead of the low-rank products reads as a ratio. Items processed = multiply-adds.
//
//   lora_kernels_bench --benchmark_filter=LoraAdd
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/lora.h"
#include "kernels/ops.h"
#include "kernels/pack.h"

namespace {

using kinfer::DType;

struct Matrix {
  std::vector<uint16_t> data;
  kinfer::TensorView view;
};

Matrix F16Matrix(int64_t rows, int64_t cols, uint32_t seed) {
  Matrix m;
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0, 0.05f);
  m.data.resize(static_cast<size_t>(rows * cols));
  for (auto& v : m.data) v = kinfer::Fp32ToFp16(dist(rng));
  m.view.dtype = DType::kF16;
  m.view.ndim = 2;
  m.view.shape = {rows, cols, 0, 0};
  m.view.data = m.data.data();
  m.view.nbytes = m.data.size() * 2;
  return m;
}

// Args: in, out, tokens, adapters (tokens spread evenly), rank.
void LoraAdd(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), T = state.range(2);
  const int64_t A = state.range(3), rank = state.range(4);
  std::vector<Matrix> as, bts;
  std::vector<kinfer::kernels::LoraMatrices> ms(static_cast<size_t>(A));
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(A));
  for (int64_t a = 0; a < A; ++a) {
    as.push_back(F16Matrix(rank, in, static_cast<uint32_t>(a)));
    bts.push_back(F16Matrix(rank, out, static_cast<uint32_t>(a + 100)));
  }
  std::vector<kinfer::kernels::LoraGroup> groups;
  for (int64_t a = 0; a < A; ++a) {
    ms[a] = {as[a].view, bts[a].view, 2.0f};
    for (int64_t t = a; t < T; t += A) rows[a].push_back(static_cast<int32_t>(t));
  }
  for (int64_t a = 0; a < A; ++a) groups.push_back({&ms[a], rows[a]});
  std::vector<float> x(static_cast<size_t>(in * T), 0.5f), y(static_cast<size_t>(out * T));
  std::vector<float> scratch(static_cast<size_t>(kinfer::kernels::LoraScratchSize(groups)));
  kinfer::ThreadPool pool(1);
  for (auto _ : state) {
    kinfer::kernels::LoraAdd(groups, x.data(), in, y.data(), out, scratch.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * rank * (in + out) * T);
}

// The base projection it sits beside: Q4_0, packed where the loader packs it.
void BaseQ4_0(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), T = state.range(2);
  std::vector<uint8_t> bytes(*kinfer::RowBytes(DType::kQ4_0, in) * static_cast<size_t>(out));
  std::mt19937 rng(1);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng() & 0x3F);
  kinfer::TensorView w;
  w.dtype = DType::kQ4_0;
  w.ndim = 2;
  w.shape = {out, in, 0, 0};
  w.data = bytes.data();
  w.nbytes = bytes.size();
  std::unique_ptr<kinfer::kernels::PackedMatrix> pm;
  if (kinfer::kernels::ShouldPack(w)) {
    pm = kinfer::kernels::PackMatrix(w);
    w = pm->view();
  }
  std::vector<float> x(static_cast<size_t>(in * T), 0.5f), y(static_cast<size_t>(out * T));
  kinfer::ThreadPool pool(1);
  for (auto _ : state) {
    kinfer::kernels::MatMul(w, x.data(), T, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * in * out * T);
}

// Qwen2.5-0.5B's q and gate projections, 16 decode tokens over 1 or 4 adapters, and 1 token.
void Args(benchmark::internal::Benchmark* b) {
  for (auto [in, out] : {std::pair<int64_t, int64_t>{896, 896}, {896, 4864}}) {
    b->Args({in, out, 16, 4, 16})->Args({in, out, 16, 1, 16})->Args({in, out, 1, 1, 16});
  }
}

}  // namespace

BENCHMARK(LoraAdd)->Apply(Args);
BENCHMARK(BaseQ4_0)->Apply(Args);

BENCHMARK_MAIN();
