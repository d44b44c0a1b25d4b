// Engine workloads for issue 4's figures, on a real Llama-shaped model (the default SmolLM2-135M
// unless a path is given), driving engine::Engine directly (no HTTP):
//   1. KV memory waste under a mixed workload: allocated token slots not holding a token, as a
//      fraction of allocated slots, averaged over steps (prefix caching off, so every block
//      belongs to one sequence);
//   2. aggregate decode tokens/s with 1, 4 and 16 concurrent sequences;
//   3. a shared-system-prompt workload with and without prefix caching: hit rate and the time
//      the prefill no longer spends.
//
//   build/release/bench/engine_workload_bench [MODEL.gguf] [--threads N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <random>
#include <string>

#include "core/thread_pool.h"
#include "engine/engine.h"
#include "model/model.h"

using namespace kinfer;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::vector<int32_t> RandomTokens(std::mt19937& rng, int n, int vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab - 10) + 5);
  return t;
}

engine::Request Make(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
  engine::Request r;
  r.id = id;
  r.prompt_tokens = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.temperature = 0;
  return r;
}

std::unique_ptr<engine::Engine> NewEngine(const model::Model& m, int threads, bool prefix,
                                          int max_seqs) {
  engine::EngineOptions o;
  o.num_threads = threads;
  o.kv_cache_bytes = int64_t{512} << 20;
  o.enable_prefix_caching = prefix;
  o.start_thread = false;
  o.max_model_len = 2048;
  o.scheduler.max_num_seqs = max_seqs;
  auto e = engine::Engine::Create(m, o);
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*e);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int threads = DefaultThreadCount();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      path = a;
    }
  }
  if (path.empty()) {
    const char* home = std::getenv("HOME");
    path = std::string(home ? home : ".") + "/.cache/kinfer/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  auto model = model::LoadModel(path);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  const int vocab = static_cast<int>((*model)->config().vocab_size);
  std::printf("model: %s (%s), %d threads\n", path.c_str(), (*model)->config().Summary().c_str(),
              threads);
  std::mt19937 rng(7);

  // 1. KV waste under a mixed workload.
  {
    auto e = NewEngine(**model, threads, /*prefix=*/false, 16);
    const int kRequests = 48;
    for (int i = 0; i < kRequests; ++i) {
      int prompt = 16 + static_cast<int>(rng() % 497);
      int out = 16 + static_cast<int>(rng() % 241);
      (void)e->Submit(Make("w" + std::to_string(i), RandomTokens(rng, prompt, vocab), out),
                      nullptr);
    }
    double waste_sum = 0;
    int samples = 0;
    const int bs = e->block_size();
    std::fprintf(stderr, "[1/3] mixed workload: %d requests ", kRequests);
    while (e->Step()) {
      engine::EngineStats s = e->Stats();
      const int64_t slots = static_cast<int64_t>(s.num_blocks - s.num_free_blocks) * bs;
      if (slots > 0) {
        waste_sum += static_cast<double>(slots - s.kv_tokens_running) / static_cast<double>(slots);
        ++samples;
      }
      if (s.steps % 200 == 0) std::fprintf(stderr, ".");
    }
    std::fprintf(stderr, "\n");
    std::printf(
        "KV waste (mixed prompts 16-512, outputs 16-256, block %d): %.2f%% of allocated "
        "slots, mean over %d steps\n",
        bs, 100.0 * waste_sum / samples, samples);
  }

  // 2. Aggregate decode throughput by concurrency.
  double single = 0;
  for (int c : {1, 4, 16}) {
    auto e = NewEngine(**model, threads, false, 64);
    const int kTokens = 64;
    for (int i = 0; i < c; ++i) {
      (void)e->Submit(Make("d" + std::to_string(i), RandomTokens(rng, 8, vocab), kTokens), nullptr);
    }
    e->Step();  // the prefills
    int64_t before = e->Stats().generation_tokens;
    auto t0 = Clock::now();
    while (e->Step()) {
    }
    double secs = Since(t0);
    double tps = static_cast<double>(e->Stats().generation_tokens - before) / secs;
    if (c == 1) single = tps;
    std::printf("decode, %2d concurrent sequences: %8.1f tokens/s aggregate (%.2fx single)\n", c,
                tps, tps / single);
  }

  // 3. Shared system prompt.
  std::vector<int32_t> system = RandomTokens(rng, 384, vocab);
  double times[2] = {0, 0};
  for (int prefix = 0; prefix < 2; ++prefix) {
    auto e = NewEngine(**model, threads, prefix == 1, 16);
    std::mt19937 r2(11);
    auto t0 = Clock::now();
    for (int i = 0; i < 16; ++i) {
      std::vector<int32_t> p = system;
      auto user = RandomTokens(r2, 24, vocab);
      p.insert(p.end(), user.begin(), user.end());
      (void)e->Submit(Make("p" + std::to_string(i), p, 4), nullptr);
      e->RunUntilIdle();  // one user after another, as a chat app's sessions arrive
    }
    times[prefix] = Since(t0);
    engine::EngineStats s = e->Stats();
    std::printf(
        "shared 384-token system prompt, 16 requests, prefix caching %s: %.3f s, hit rate "
        "%.1f%% (%lld of %lld prompt tokens), %lld prompt tokens computed\n",
        prefix ? "on " : "off", times[prefix],
        s.prefix_cache_queries ? 100.0 * s.prefix_cache_hits / s.prefix_cache_queries : 0.0,
        static_cast<long long>(s.prefix_cache_hits), static_cast<long long>(s.prefix_cache_queries),
        static_cast<long long>(s.prompt_tokens));
  }
  std::printf("prefill time saved by prefix caching: %.1f%% (%.2fx faster)\n",
              100.0 * (1 - times[1] / times[0]), times[0] / times[1]);
  return 0;
}
