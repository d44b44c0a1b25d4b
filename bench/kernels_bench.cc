// Kernel microbenchmarks: MatMul per weight type and token count, single-threaded, on a
// [rows, cols] weight with random blocks. Items processed = weights x tokens (multiply-adds).
//
//   kernels_bench --benchmark_filter=MatMul/Q4_0
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/internal/matmul_amx_int8.h"
#include "kernels/ops.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

namespace {

using kinfer::DType;

struct Weight {
  std::vector<uint8_t> bytes;
  kinfer::TensorView view;
};

Weight MakeWeight(DType t, int64_t rows, int64_t cols) {
  Weight w;
  size_t bytes = *kinfer::RowBytes(t, cols) * static_cast<size_t>(rows);
  w.bytes.resize(bytes);
  std::mt19937 rng(1);
  if (t == DType::kF16 || t == DType::kBF16) {  // N(0, 0.02): no subnormals, which slow FMAs
    std::normal_distribution<float> nd(0.0f, 0.02f);
    auto* h = reinterpret_cast<uint16_t*>(w.bytes.data());
    for (size_t i = 0; i < bytes / 2; ++i) {
      h[i] = t == DType::kF16 ? kinfer::Fp32ToFp16(nd(rng)) : kinfer::Fp32ToBf16(nd(rng));
    }
  } else {
    for (auto& b : w.bytes) b = static_cast<uint8_t>(rng() & 0x3F);  // small values, no NaN/Inf
  }
  w.view.dtype = t;
  w.view.ndim = 2;
  w.view.shape = {rows, cols, 0, 0};
  w.view.data = w.bytes.data();
  w.view.nbytes = bytes;
  return w;
}

// `packed`: the layout the loader makes for this CPU (kernels/pack.h), where it makes one.
// `exact`: MatMulPrecision::kExact (f32 activations on every path). `k_path`: which 8-bit
// kernel runs (K-quants and Q8_0/Q4_0/Q5_0/Q5_1 alike): kDefault (AMX-INT8 tiles from
// kAmxInt8KMinTokens / kAmxInt8Q8MinTokens virtual tokens), kVnni (VNNI at every batch) or kAmx
// (tiles at every batch), to find where one overtakes the other.
enum KPath { kDefault, kVnni, kAmx };
void MatMul(benchmark::State& state, DType t, bool packed, bool exact = false,
            KPath k_path = kDefault) {
  const int64_t amx_min = kinfer::kernels::internal::SetAmxInt8KMinTokensForTest(
      k_path == kVnni  ? INT64_MAX
      : k_path == kAmx ? 1
                       : kinfer::kernels::internal::kAmxInt8KMinTokens);
  const int64_t amx_q8_min = kinfer::kernels::internal::SetAmxInt8Q8MinTokensForTest(
      k_path == kVnni  ? INT64_MAX
      : k_path == kAmx ? 1
                       : kinfer::kernels::internal::kAmxInt8Q8MinTokens);
  kinfer::kernels::SetMatMulPrecision(exact ? kinfer::kernels::MatMulPrecision::kExact
                                            : kinfer::kernels::MatMulPrecision::kFast);
  const int64_t rows = state.range(0), cols = state.range(1), tokens = state.range(2);
  Weight w = MakeWeight(t, rows, cols);
  std::unique_ptr<kinfer::kernels::PackedMatrix> pm;
  if (packed) {
    if (!kinfer::kernels::ShouldPack(w.view)) {
      state.SkipWithError("not packed on this CPU");
      return;
    }
    pm = kinfer::kernels::PackMatrix(w.view);
    w.view = pm->view();
  }
  std::vector<float> x(static_cast<size_t>(cols * tokens), 0.5f),
      y(static_cast<size_t>(rows * tokens));
  kinfer::ThreadPool pool(1);
  for (auto _ : state) {
    kinfer::kernels::MatMul(w.view, x.data(), tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * tokens);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.bytes.size()));
  kinfer::kernels::SetMatMulPrecision(kinfer::kernels::MatMulPrecision::kFast);
  kinfer::kernels::internal::SetAmxInt8KMinTokensForTest(amx_min);
  kinfer::kernels::internal::SetAmxInt8Q8MinTokensForTest(amx_q8_min);
}

void Args(benchmark::internal::Benchmark* b) {
  b->Args({4864, 896, 1})
      ->Args({896, 4864, 1})
      ->Args({151936, 896, 1})
      ->Args({4864, 896, 4})
      ->Args({4864, 896, 16})
      ->Args({4864, 896, 64})
      ->Args({4864, 896, 512})
      ->Args({896, 4864, 512});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(MatMul, F16, DType::kF16, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, F16_exact, DType::kF16, false, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, BF16, DType::kBF16, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, BF16_exact, DType::kBF16, false, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q8_0, DType::kQ8_0, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q8_0x16, DType::kQ8_0, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q4_0, DType::kQ4_0, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q4_0x16, DType::kQ4_0, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q4_1, DType::kQ4_1, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q5_0x16, DType::kQ5_0, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q4_K, DType::kQ4_K, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q4_Kx16, DType::kQ4_K, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q4_K_exact, DType::kQ4_K, false, true)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q6_K, DType::kQ6_K, false)->Apply(Args);
BENCHMARK_CAPTURE(MatMul, Q6_Kx16, DType::kQ6_K, true)->Apply(Args);

// K-quant prefill and batched decode: AMX-INT8 tiles against the VNNI kernel (Llama-3.2-1B
// shapes).
void KArgs(benchmark::internal::Benchmark* b) {
  for (int64_t tokens : {1, 2, 4, 8, 16, 64}) {
    b->Args({2048, 2048, tokens})->Args({8192, 2048, tokens});
  }
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK_CAPTURE(MatMul, KAmx_Q4_Kx16, DType::kQ4_K, true, false, kAmx)->Apply(KArgs);
BENCHMARK_CAPTURE(MatMul, KVnni_Q4_Kx16, DType::kQ4_K, true, false, kVnni)->Apply(KArgs);
BENCHMARK_CAPTURE(MatMul, KAmx_Q5_Kx16, DType::kQ5_K, true, false, kAmx)->Apply(KArgs);
BENCHMARK_CAPTURE(MatMul, KVnni_Q5_Kx16, DType::kQ5_K, true, false, kVnni)->Apply(KArgs);
BENCHMARK_CAPTURE(MatMul, KAmx_Q6_Kx16, DType::kQ6_K, true, false, kAmx)->Apply(KArgs);
BENCHMARK_CAPTURE(MatMul, KVnni_Q6_Kx16, DType::kQ6_K, true, false, kVnni)->Apply(KArgs);

// Q8_0/Q4_0/Q5_0/Q5_1 batched decode and prefill: AMX-INT8 tiles against the VNNI kernel
// (Qwen2.5-0.5B shapes; 8, 16, 32 tokens are 16, 32, 64 virtual tokens).
void Q8Args(benchmark::internal::Benchmark* b) {
  for (int64_t tokens : {4, 8, 16, 32, 64}) {
    b->Args({896, 896, tokens})->Args({4864, 896, tokens})->Args({896, 4864, tokens});
  }
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK_CAPTURE(MatMul, Q8Amx_Q8_0x16, DType::kQ8_0, true, false, kAmx)->Apply(Q8Args);
BENCHMARK_CAPTURE(MatMul, Q8Vnni_Q8_0x16, DType::kQ8_0, true, false, kVnni)->Apply(Q8Args);
BENCHMARK_CAPTURE(MatMul, Q8Amx_Q4_0x16, DType::kQ4_0, true, false, kAmx)->Apply(Q8Args);
BENCHMARK_CAPTURE(MatMul, Q8Vnni_Q4_0x16, DType::kQ4_0, true, false, kVnni)->Apply(Q8Args);
BENCHMARK_CAPTURE(MatMul, Q8Amx_Q5_0x16, DType::kQ5_0, true, false, kAmx)->Apply(Q8Args);
BENCHMARK_CAPTURE(MatMul, Q8Vnni_Q5_0x16, DType::kQ5_0, true, false, kVnni)->Apply(Q8Args);

}  // namespace

BENCHMARK_MAIN();
