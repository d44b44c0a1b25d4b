// Decode's matmuls against the memory bandwidth they stream at: Llama-3.2-1B- or
// Qwen2.5-0.5B-shaped layers (q/k/v together, o, gate/up together, down) of one weight type, packed
// as the loader packs them, enough layers that the weights exceed the last-level cache; one "token"
// runs every layer's matmuls in the decoder's order and dispatch (MatMulMany for q/k/v and
// gate/up). Prints, for alternated repetitions, the bytes a second that the matmuls stream and that
// an f32 sum over the same bytes streams, read each of bench::kReadWays and the fastest kept
// (stream_read.h), with the same dispatches ("sum, per matmul") and in one dispatch ("sum, one
// region": what kinfer_bench --stream-gib measures).
//
//   decode_stream_bench [--type Q4_K|Q5_K|Q6_K|Q8_0|Q4_0|Q5_0|Q5_1]
//                       [--shape llama-3.2-1b|qwen2.5-0.5b] [--threads T] [--mib M] [-r REPS]
//                       [--tokens N]
// and, per step of a layer (q/k/v, o, gate/up, down), matmul and sum GB/s.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "kernels/vector_ops.h"
#include "stream_read.h"

namespace {

using kinfer::DType;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Matrix {
  std::unique_ptr<kinfer::kernels::PackedMatrix> packed;
  const kinfer::TensorView& view() const { return packed->view(); }
};

// A packed [rows, cols] matrix of random blocks (bytes below 0x40: finite f16 scales).
Matrix MakePacked(DType t, int64_t rows, int64_t cols, std::mt19937_64& rng) {
  const size_t bytes = *kinfer::RowBytes(t, cols) * static_cast<size_t>(rows);
  std::vector<uint8_t> data(bytes);
  // Eight bytes a draw: one draw a byte made set-up take most of a run.
  for (size_t i = 0; i < bytes; i += 8) {
    const uint64_t r = rng() & 0x3F3F3F3F3F3F3F3FULL;
    std::memcpy(data.data() + i, &r, std::min<size_t>(8, bytes - i));
  }
  kinfer::TensorView v;
  v.dtype = t;
  v.ndim = 2;
  v.shape = {rows, cols, 0, 0};
  v.data = data.data();
  v.nbytes = bytes;
  return Matrix{kinfer::kernels::PackMatrix(v)};
}

struct Layer {
  Matrix q, k, v, o, gate, up, down;
};

DType ParseType(const std::string& s) {
  if (s == "Q4_K") return DType::kQ4_K;
  if (s == "Q5_K") return DType::kQ5_K;
  if (s == "Q6_K") return DType::kQ6_K;
  if (s == "Q8_0") return DType::kQ8_0;
  if (s == "Q4_0") return DType::kQ4_0;
  if (s == "Q5_0") return DType::kQ5_0;
  if (s == "Q5_1") return DType::kQ5_1;
  std::fprintf(stderr, "unknown type %s\n", s.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string type = "Q4_K", shape = "llama-3.2-1b";
  int threads = 2, reps = 5, tokens = 1;
  double mib = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--type") type = argv[i + 1];
    if (a == "--shape") shape = argv[i + 1];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--mib") mib = std::atof(argv[i + 1]);
    if (a == "-r") reps = std::atoi(argv[i + 1]);
    if (a == "--tokens") tokens = std::atoi(argv[i + 1]);
  }
  const DType t = ParseType(type);
  // Hidden size, k/v rows, feed-forward size. Qwen's rows are short (896 columns: 28 blocks of
  // 32), so a row's fixed costs weigh more than on Llama's 2048; they are no whole number of
  // K-quant super-blocks (llama-quantize gives those tensors a 32-block type instead).
  const bool qwen = shape == "qwen2.5-0.5b";
  if (!qwen && shape != "llama-3.2-1b") {
    std::fprintf(stderr, "unknown shape %s\n", shape.c_str());
    return 2;
  }
  if (qwen && kinfer::GetDTypeInfo(t).block_size != 32) {
    std::fprintf(stderr, "qwen2.5-0.5b's 896 columns take a type of 32-element blocks\n");
    return 2;
  }
  const int64_t kD = qwen ? 896 : 2048, kKv = qwen ? 128 : 512, kFf = qwen ? 4864 : 8192;
  std::mt19937_64 rng(1);
  std::vector<Layer> layers;
  size_t total = 0;
  while (static_cast<double>(total) < mib * (1 << 20)) {
    Layer l{MakePacked(t, kD, kD, rng), MakePacked(t, kKv, kD, rng), MakePacked(t, kKv, kD, rng),
            MakePacked(t, kD, kD, rng), MakePacked(t, kFf, kD, rng), MakePacked(t, kFf, kD, rng),
            MakePacked(t, kD, kFf, rng)};
    for (const Matrix* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      total += m->view().nbytes;
    }
    layers.push_back(std::move(l));
  }
  kinfer::ThreadPool pool(threads);
  std::vector<float> x(static_cast<size_t>(kFf * tokens)), y(static_cast<size_t>(kFf * tokens)),
      y2(static_cast<size_t>(kFf * tokens)), y3(static_cast<size_t>(kFf * tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i)) * 0.5f;
  std::vector<float> sums(static_cast<size_t>(threads) * 64);

  // Seconds spent in each step (q/k/v, o, gate/up, down) over all runs, matmuls and sums.
  double mm_step[4] = {};
  auto timed = [](double* acc, auto&& f) {
    const double t0 = Now();
    f();
    *acc += Now() - t0;
  };
  auto run_matmuls = [&] {
    for (const Layer& l : layers) {
      const kinfer::kernels::MatMulJob qkv[] = {{&l.q.view(), x.data(), y.data()},
                                                {&l.k.view(), x.data(), y2.data()},
                                                {&l.v.view(), x.data(), y3.data()}};
      timed(&mm_step[0], [&] { kinfer::kernels::MatMulMany(qkv, tokens, pool); });
      timed(&mm_step[1],
            [&] { kinfer::kernels::MatMul(l.o.view(), x.data(), tokens, y.data(), pool); });
      const kinfer::kernels::MatMulJob gu[] = {{&l.gate.view(), x.data(), y.data()},
                                               {&l.up.view(), x.data(), y2.data()}};
      timed(&mm_step[2], [&] { kinfer::kernels::MatMulMany(gu, tokens, pool); });
      timed(&mm_step[3],
            [&] { kinfer::kernels::MatMul(l.down.view(), x.data(), tokens, y.data(), pool); });
    }
  };
  // Sums the bytes of the given matrices, laid end to end, in one parallel region split as
  // MatMulMany splits rows (16-row groups, four ranges a thread).
  auto sum_region = [&](std::initializer_list<const Matrix*> ms, kinfer::bench::ReadWay way) {
    int64_t groups = 0;
    for (const Matrix* m : ms) groups += (m->view().rows() + 15) / 16;
    pool.ParallelFor(
        groups,
        [&](int64_t begin, int64_t end) {
          float s = 0;
          int64_t first = 0;
          for (const Matrix* m : ms) {
            const int64_t g = (m->view().rows() + 15) / 16;
            const int64_t lo = std::max(begin, first) - first,
                          hi = std::min(end, first + g) - first;
            if (lo < hi) {
              const size_t gb = m->view().nbytes / static_cast<size_t>(g);
              const auto* p = static_cast<const uint8_t*>(m->view().data) + lo * gb;
              s += kinfer::bench::SumRead(reinterpret_cast<const float*>(p),
                                          static_cast<int64_t>((hi - lo) * gb / 4), way);
            }
            first += g;
          }
          sums[static_cast<size_t>(begin % threads) * 16] += s;
        },
        1);
  };
  auto run_sums = [&](kinfer::bench::ReadWay way, double(&step)[4]) {
    for (const Layer& l : layers) {
      timed(&step[0], [&] { sum_region({&l.q, &l.k, &l.v}, way); });
      timed(&step[1], [&] { sum_region({&l.o}, way); });
      timed(&step[2], [&] { sum_region({&l.gate, &l.up}, way); });
      timed(&step[3], [&] { sum_region({&l.down}, way); });
    }
  };
  auto run_one_region = [&](kinfer::bench::ReadWay way) {
    pool.Run([&](int th, int nt) {
      float s = 0;
      for (const Layer& l : layers) {
        for (const Matrix* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
          const int64_t n = static_cast<int64_t>(m->view().nbytes / 4);
          const int64_t b = n * th / nt / 16 * 16, e = n * (th + 1) / nt / 16 * 16;
          s += kinfer::bench::SumRead(static_cast<const float*>(m->view().data) + b, e - b, way);
        }
      }
      sums[static_cast<size_t>(th) * 16] += s;
    });
  };
  std::printf("%s %s, %zu layers, %.0f MiB, %d threads, %d tokens\n", shape.c_str(), type.c_str(),
              layers.size(), static_cast<double>(total) / (1 << 20), threads, tokens);
  // The sums read each of bench::kReadWays; each repetition keeps its fastest way.
  constexpr size_t kWays = std::size(kinfer::bench::kReadWays);
  double way_step[kWays][4] = {};
  // Warm-up: its first matmul pays the one-time set-up (thread-local buffers, the first touch
  // of the outputs), 7.8 ms against a step's 0.2, which made the first step look 2x slower
  // than it runs; so the per-step sums start after it.
  run_matmuls();
  for (size_t w = 0; w < kWays; ++w) run_sums(kinfer::bench::kReadWays[w], way_step[w]);
  std::fill(std::begin(mm_step), std::end(mm_step), 0.0);
  for (auto& step : way_step) std::fill(std::begin(step), std::end(step), 0.0);
  std::vector<double> mm, sm, so;
  for (int r = 0; r < reps; ++r) {
    double t0 = Now();
    run_matmuls();
    mm.push_back(static_cast<double>(total) / (Now() - t0) / 1e9);
    double best_sm = 0, best_so = 0;
    for (size_t w = 0; w < kWays; ++w) {
      t0 = Now();
      run_sums(kinfer::bench::kReadWays[w], way_step[w]);
      best_sm = std::max(best_sm, static_cast<double>(total) / (Now() - t0) / 1e9);
      t0 = Now();
      run_one_region(kinfer::bench::kReadWays[w]);
      best_so = std::max(best_so, static_cast<double>(total) / (Now() - t0) / 1e9);
    }
    sm.push_back(best_sm);
    so.push_back(best_so);
  }
  // Per step, the way whose sums took the least time in all.
  size_t fastest = 0;
  auto way_total = [&](size_t w) {
    return way_step[w][0] + way_step[w][1] + way_step[w][2] + way_step[w][3];
  };
  for (size_t w = 1; w < kWays; ++w) {
    if (way_total(w) < way_total(fastest)) fastest = w;
  }
  const double* sum_step = way_step[fastest];
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto best = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf(
      "GB/s median (best): matmuls %.2f (%.2f), sum per matmul %.2f (%.2f), "
      "sum one region %.2f (%.2f); matmuls / sum one region %.3f\n",
      median(mm), best(mm), median(sm), best(sm), median(so), best(so), median(mm) / median(so));
  // Per step, over all repetitions: where short rows (Qwen's q/k/v, o,
  // gate/up) and long ones (down) lose against the sum.
  const auto& l0 = layers[0];
  const double step_bytes[4] = {
      static_cast<double>(l0.q.view().nbytes + l0.k.view().nbytes + l0.v.view().nbytes),
      static_cast<double>(l0.o.view().nbytes),
      static_cast<double>(l0.gate.view().nbytes + l0.up.view().nbytes),
      static_cast<double>(l0.down.view().nbytes)};
  const char* step_names[4] = {"q/k/v", "o", "gate/up", "down"};
  std::printf("per step GB/s, matmuls / sum per matmul:");
  for (int i = 0; i < 4; ++i) {
    const double n = step_bytes[i] * static_cast<double>(layers.size()) * reps / 1e9;
    std::printf(" %s %.2f / %.2f (%.3f)", step_names[i], n / mm_step[i], n / sum_step[i],
                sum_step[i] / mm_step[i]);
  }
  std::printf("\n");
  float s = 0;
  for (float v : sums) s += v;
  return s == 42.0f ? 1 : 0;
}
