// Prefill and decode speed of one model through its backend (the CPU decoder, or the GPU with
// --device cuda), the counterpart of `llama-bench -p 512 -n 128`: a prompt of P random tokens
// as one chunk, then N single-token decode steps, repeated R times; prints the median of each
// as one JSON line.
//
//   kinfer_bench --model m.gguf --threads 2 -p 512 -n 128 -r 3 [--device cuda]
//   kinfer_bench --cpu-info     # the kernels' SIMD target, and whether AMX may be used
//   kinfer_bench --exact ...    # f32 activations everywhere (MatMulPrecision::kExact)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/huge_pages.h"
#include "core/thread_pool.h"
#include "engine/device.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/simd_target.h"
#include "kernels/vector_ops.h"
#include "model/backend.h"
#include "model/model.h"
#include "stream_read.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU seconds of the whole process: on a shared machine, a rate per CPU second is steadier
// than one per wall second (it does not count time the scheduler gave to others).
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// STREAM-style read bandwidth: each thread sums its share of a buffer many times larger than
// the caches, each of bench::kReadWays in turn; the best pass of `reps` rounds, in bytes per
// second, overall (`best`) and for the plain sum alone (`plain`).
struct Bandwidth {
  double best = 0;
  double plain = 0;
};

Bandwidth ReadBandwidth(kinfer::ThreadPool& pool, size_t bytes, int reps) {
  // In huge pages like the packed weights whose decode it bounds: in 4 KiB pages the same sum
  // reads ~9% slower here, which would understate the bound.
  kinfer::HugePageMapping memory(bytes);
  auto* buf = reinterpret_cast<float*>(memory.data());
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 1023);
  std::vector<float> sums(static_cast<size_t>(pool.num_threads()) * 16);
  Bandwidth bw;
  for (int r = 0; r < reps; ++r) {
    for (const kinfer::bench::ReadWay& way : kinfer::bench::kReadWays) {
      double t0 = Now();
      pool.Run([&](int t, int nt) {
        const int64_t begin = n * t / nt / 64 * 64, end = n * (t + 1) / nt / 64 * 64;
        sums[static_cast<size_t>(t) * 16] += kinfer::bench::SumRead(buf + begin, end - begin, way);
      });
      double dt = Now() - t0;
      const double rate = static_cast<double>(n / 64 * 64) * sizeof(float) / dt;
      bw.best = std::max(bw.best, rate);
      if (way.l2_ahead == 0) bw.plain = std::max(bw.plain, rate);
    }
  }
  float total = 0;
  for (float v : sums) total += v;
  if (total == 42.0f) std::puts("");  // keeps the sums alive
  return bw;
}

int Usage() {
  std::fprintf(stderr,
               "usage: kinfer_bench --model FILE [--threads T] [-p PROMPT] [-n DECODE] [-r REPS] "
               "[--device cpu|cuda] [--exact]\n"
               "       kinfer_bench --stream-gib GIB [--threads T] [-r REPS]\n"
               "       kinfer_bench --cpu-info\n");
  return 2;
}

// What Kinfer's kernels run on here (bench/cpu_probe.cc reports the CPU itself).
int CpuInfo() {
  std::printf("{\"kernels_target\": \"%s\", \"amx_usable\": %s}\n",
              kinfer::kernels::SimdTarget().c_str(),
              kinfer::RequestAmx().usable ? "true" : "false");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kinfer;
  std::string path;
  int threads = 0, reps = 3;
  double stream_gib = 0;
  int64_t prompt = 512, decode = 128;
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--model" || a == "-m") {
      if (!(v = next())) return Usage();
      path = v;
    } else if (a == "--threads" || a == "-t") {
      if (!(v = next())) return Usage();
      threads = std::atoi(v);
    } else if (a == "-p") {
      if (!(v = next())) return Usage();
      prompt = std::atoll(v);
    } else if (a == "-n") {
      if (!(v = next())) return Usage();
      decode = std::atoll(v);
    } else if (a == "--stream-gib") {
      if (!(v = next())) return Usage();
      stream_gib = std::atof(v);
    } else if (a == "--exact") {
      kernels::SetMatMulPrecision(kernels::MatMulPrecision::kExact);
    } else if (a == "--cpu-info") {
      return CpuInfo();
    } else if (a == "--device") {
      if (!(v = next())) return Usage();
      device_name = v;
    } else if (a == "-r") {
      if (!(v = next())) return Usage();
      reps = std::atoi(v);
    } else {
      return Usage();
    }
  }
  if (stream_gib > 0) {
    kinfer::ThreadPool pool(threads);
    const Bandwidth bw =
        ReadBandwidth(pool, static_cast<size_t>(stream_gib * (1 << 30)), std::max(reps, 3));
    std::printf(
        "{\"threads\": %d, \"read_bytes_per_s\": %.0f, \"plain_sum_read_bytes_per_s\": %.0f}\n",
        pool.num_threads(), bw.best, bw.plain);
    return 0;
  }
  if (path.empty() || prompt < 1 || decode < 0 || reps < 1) return Usage();

  auto device = engine::ParseDevice(device_name);
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", device.status().ToString().c_str());
    return 2;
  }
  const engine::Device dev = engine::ResolveDevice(*device);
  model::LoadOptions load;
  load.pack_weights = dev == engine::Device::kCpu;
  const double load_t0 = Now();
  auto model = model::LoadModel(path, load);
  const double load_seconds = Now() - load_t0;  // read, convert and repack; page cache as found
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  const model::ModelConfig& c = (*model)->config();
  ThreadPool pool(threads);
  auto backend = engine::CreateBackend(**model, dev, pool, 0.9);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  model::Backend& dec = **backend;
  const int64_t bs = 16;
  const int64_t total = prompt + decode;
  model::KvStoreConfig kc{c.num_layers, c.num_kv_heads,        c.head_dim,
                          bs,           (total + bs - 1) / bs, DType::kF16};
  Status kv = dec.Reserve(prompt).status();
  if (kv.ok()) kv = dec.AllocateKvCache(kc, total);
  if (!kv.ok()) {
    std::fprintf(stderr, "%s\n", kv.ToString().c_str());
    return 1;
  }
  std::vector<int32_t> table(static_cast<size_t>(kc.num_blocks));
  std::iota(table.begin(), table.end(), 0);
  std::mt19937 rng(1);
  std::vector<int32_t> tokens(static_cast<size_t>(total));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));

  auto run = [&](int64_t start, int64_t n) {
    model::SequenceInput s{static_cast<int32_t>(n), static_cast<int32_t>(start), table,
                           model::LogitsMode::kLast};
    model::ForwardBatch b{std::span<const int32_t>(tokens).subspan(static_cast<size_t>(start),
                                                                   static_cast<size_t>(n)),
                          std::span<const model::SequenceInput>(&s, 1)};
    Status st = dec.Forward(b, logits);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      std::exit(1);
    }
  };

  // One untimed pass warms the page cache, the pool and the workspaces.
  run(0, std::min<int64_t>(prompt, 16));
  std::vector<double> pp, tg, pp_cpu, tg_cpu;
  const double nt = pool.num_threads();
  for (int r = 0; r < reps; ++r) {
    double t0 = Now(), c0 = CpuNow();
    run(0, prompt);
    double t1 = Now(), c1 = CpuNow();
    pp.push_back(static_cast<double>(prompt) / (t1 - t0));
    pp_cpu.push_back(static_cast<double>(prompt) * nt / (c1 - c0));
    if (decode > 0) {
      for (int64_t i = 0; i < decode; ++i) run(prompt + i, 1);
      tg.push_back(static_cast<double>(decode) / (Now() - t1));
      tg_cpu.push_back(static_cast<double>(decode) * nt / (CpuNow() - c1));
    }
  }
  std::printf(
      "{\"model\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"prompt\": %lld, \"decode\": "
      "%lld, \"reps\": %d, "
      "\"prefill_tps\": %.3f, \"decode_tps\": %.3f, \"prefill_tps_cpu\": %.3f, "
      "\"decode_tps_cpu\": %.3f, \"weight_bytes\": %zu, \"load_s\": %.3f}\n",
      path.c_str(), dec.Describe().c_str(), pool.num_threads(), static_cast<long long>(prompt),
      static_cast<long long>(decode), reps, Median(pp), tg.empty() ? 0.0 : Median(tg),
      Median(pp_cpu), tg_cpu.empty() ? 0.0 : Median(tg_cpu), (*model)->weight_bytes(),
      load_seconds);
  return 0;
}
