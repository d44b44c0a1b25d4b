// The router's own work per request, without the network (Google Benchmark, one thread): reading
// a request body (JSON, chat template, tokenizer, cut to --prefix-max-tokens), hashing its
// blocks and picking a replica. Uses the default model's tokenizer and template
// ($KINFER_DEFAULT_MODEL or ~/.cache/kinfer/models/SmolLM2-135M-Instruct.Q4_1.gguf). These are
// the parts of the added latency that bench/router_bench.py measures end to end.
//
//   router_overhead_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "router/backend_pool.h"
#include "router/request_info.h"

namespace {

using kinfer::router::PromptModel;

const PromptModel* Model() {
  static std::unique_ptr<PromptModel> m = [] {
    const char* env = std::getenv("KINFER_DEFAULT_MODEL");
    std::string path = env ? env
                           : std::string(std::getenv("HOME")) +
                                 "/.cache/kinfer/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    auto loaded = PromptModel::Load(path, "");
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(*loaded);
  }();
  return m.get();
}

std::string Words(size_t bytes) {
  static const char* kWords[] = {"time",   "river", "stone",  "light",  "paper",  "garden",
                                 "window", "music", "silver", "forest", "market", "winter"};
  std::mt19937 rng(1);
  std::string s;
  while (s.size() < bytes) {
    s += kWords[rng() % 12];
    s += ' ';
  }
  return s;
}

std::string ChatBody(size_t content_bytes) {
  return R"({"model":"m","max_tokens":1,"messages":[{"role":"system","content":"You are terse."},)"
         R"({"role":"user","content":")" +
         Words(content_bytes) + R"("}]})";
}

void ReadChat(benchmark::State& state, size_t content_bytes, bool with_model, size_t max_tokens) {
  const std::string body = ChatBody(content_bytes);
  const PromptModel* model = with_model ? Model() : nullptr;
  kinfer::router::RequestInfoOptions o;
  o.max_tokens = max_tokens;
  for (auto _ : state) {
    auto info = kinfer::router::ReadRequestInfo("/v1/chat/completions", body, model, o);
    benchmark::DoNotOptimize(info);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_ReadChat_Small(benchmark::State& s) { ReadChat(s, 100, true, 4096); }
void BM_ReadChat_Small_NoModel(benchmark::State& s) { ReadChat(s, 100, false, 4096); }
void BM_ReadChat_200KB(benchmark::State& s) { ReadChat(s, 200000, true, 4096); }
void BM_ReadChat_200KB_Cap1024(benchmark::State& s) { ReadChat(s, 200000, true, 1024); }
void BM_ReadChat_200KB_NoTokenize(benchmark::State& s) {
  const std::string body = ChatBody(200000);
  kinfer::router::RequestInfoOptions o;
  o.tokenize = false;  // what the other policies do: the fields only
  for (auto _ : s) {
    auto info = kinfer::router::ReadRequestInfo("/v1/chat/completions", body, Model(), o);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK(BM_ReadChat_Small)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadChat_Small_NoModel)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadChat_200KB)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadChat_200KB_Cap1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadChat_200KB_NoTokenize)->Unit(benchmark::kMicrosecond);

// Hashing a prompt's blocks and choosing among `replicas` with the prefix policy (the index
// warm with other groups' prompts).
void BM_ChoosePrefix(benchmark::State& state) {
  const int replicas = static_cast<int>(state.range(0));
  kinfer::router::PoolOptions po;
  kinfer::router::BackendPool pool(po);
  std::vector<kinfer::router::DiscoveredEndpoint> eps;
  for (int i = 0; i < replicas; ++i) eps.push_back({{"10.0.0.1", 8000 + i}, true, false, ""});
  pool.SetEndpoints(eps);
  for (auto& b : pool.Backends()) pool.OnProbe(*b, true);
  kinfer::router::RequestInfo info;
  info.exact_tokens = true;
  for (int g = 0; g < 32; ++g) {
    info.prompt.assign(2048, g);
    auto p = pool.Choose(info, {}, std::nullopt);
    pool.Release(*p->backend, kinfer::router::Outcome::kSuccess);
  }
  info.prompt.assign(2048, 7);  // 128 blocks, cached somewhere
  for (auto _ : state) {
    auto p = pool.Choose(info, {}, std::nullopt);
    pool.Release(*p->backend, kinfer::router::Outcome::kSuccess);
  }
}
BENCHMARK(BM_ChoosePrefix)->Arg(4)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
