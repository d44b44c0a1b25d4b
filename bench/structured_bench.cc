// Structured output's cost, issue 14's figures, on a real model (the default SmolLM2-135M unless
// a path is given), driving engine::Engine directly (no HTTP):
//   1. aggregate decode tokens/s of a 16-stream batch with none and with half of its streams
//      constrained to a JSON schema (goal: >= 0.9x), in alternated rounds, as the ratio of each
//      round pair and their median;
//   2. mask time per token: each ComputeMask of the constrained streams, replayed on the tokens
//      they generated, median and p99 (and the engine's own mean).
// The machines are shared and noisy: trust the ratios of one run, not absolute numbers.
//
//   build/release/bench/structured_bench [MODEL.gguf] [--threads N] [--rounds R] [--steps S]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "core/thread_pool.h"
#include "engine/engine.h"
#include "model/model.h"
#include "structured/grammar.h"
#include "tokenizer/engine_text.h"
#include "tokenizer/tokenizer.h"

using namespace kinfer;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds of this process: less disturbed than wall time by other processes on a shared node.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// What a structured-output request typically asks for: an object with strings, numbers, an
// enum, an array of sub-objects.
constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "title": {"type": "string"},
    "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
    "rating": {"type": "number"},
    "genre": {"enum": ["drama", "comedy", "thriller", "documentary"]},
    "cast": {"type": "array", "items": {"type": "object", "properties": {
      "name": {"type": "string"}, "role": {"type": "string"}},
      "required": ["name", "role"], "additionalProperties": false}}
  },
  "required": ["title", "year", "rating", "genre", "cast"],
  "additionalProperties": false,
  "x-guidance": {"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": ",
                 "coerce_one_of": true}
})";

std::vector<int> pending_;  // slots whose request finished, to refill before the next step

struct Run {
  double tps = 0;
  double tps_cpu = 0;  // tokens per CPU-second of the process
  double secs = 0;
  int64_t tokens = 0;
  int64_t masks = 0;
  double mask_seconds = 0;
  std::vector<std::vector<int32_t>> constrained_outputs;
};

// Keeps `streams` requests running (a finished one is replaced at once) for `steps` steps after
// a warm-up; every other stream is constrained when `constrained`.
Run Decode(const model::Model& m, const tokenizer::Tokenizer& tok,
           std::shared_ptr<const engine::Constraint> c, int threads, int streams, int steps,
           bool constrained) {
  engine::EngineOptions o;
  o.num_threads = threads;
  o.kv_cache_bytes = int64_t{256} << 20;
  o.start_thread = false;
  o.max_model_len = 1024;
  o.scheduler.max_num_seqs = streams;
  o.text_decoder = tokenizer::EngineTextDecoder(tok);
  o.eos_token_ids = tok.eos_ids();
  auto e = engine::Engine::Create(m, o);
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
    std::exit(1);
  }
  const std::vector<int32_t> prompt = tok.Encode(
      "<|im_start|>user\nDescribe a film as JSON.<|im_end|>\n<|im_start|>assistant\n", false, true);
  Run run;
  std::map<std::string, std::vector<int32_t>> outputs;
  int next = 0, live = 0;
  auto submit = [&](int slot) {
    engine::Request r;
    r.id = std::to_string(next++);
    r.prompt_tokens = prompt;
    r.params.max_tokens = 96;
    r.params.temperature = 0.8f;
    r.params.seed = static_cast<uint64_t>(next);
    const bool con = constrained && slot % 2 == 1;
    if (con) r.params.constraint = c;
    const std::string id = r.id;
    ++live;
    (void)(*e)->Submit(std::move(r), [&, id, con, slot](engine::RequestOutput out) {
      for (auto& s : out.seqs) {
        if (con) outputs[id].insert(outputs[id].end(), s.token_ids.begin(), s.token_ids.end());
      }
      if (out.finished) {
        --live;
        if (con) run.constrained_outputs.push_back(outputs[id]);
        pending_.push_back(slot);
      }
    });
  };
  for (int s = 0; s < streams; ++s) submit(s);
  for (int i = 0; i < 3; ++i) (*e)->Step();  // prefills and warm-up
  const int64_t t0_tokens = (*e)->Stats().generation_tokens;
  const auto mask0 = (*e)->Stats();
  const Clock::time_point t0 = Clock::now();
  const double cpu0 = CpuSeconds();
  for (int i = 0; i < steps; ++i) {
    std::vector<int> again;
    again.swap(pending_);
    for (int slot : again) submit(slot);
    (*e)->Step();
  }
  const double secs = Since(t0);
  const double cpu = CpuSeconds() - cpu0;
  const engine::EngineStats st = (*e)->Stats();
  run.tokens = st.generation_tokens - t0_tokens;
  run.secs = secs;
  run.tps = static_cast<double>(run.tokens) / secs;
  run.tps_cpu = static_cast<double>(run.tokens) / cpu;
  run.masks = st.masks_computed - mask0.masks_computed;
  run.mask_seconds = st.mask_seconds - mask0.mask_seconds;
  (*e)->Shutdown();
  pending_.clear();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int threads = DefaultThreadCount(), rounds = 3, steps = 48;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      path = a;
    }
  }
  if (path.empty()) {
    const char* home = std::getenv("HOME");
    path = std::string(home ? home : ".") + "/.cache/kinfer/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  auto model = model::LoadModel(path);
  auto tok = tokenizer::Tokenizer::Load(path);
  if (!model.ok() || !tok.ok()) {
    std::fprintf(stderr, "%s\n", (model.ok() ? tok.status() : model.status()).ToString().c_str());
    return 1;
  }
  const Clock::time_point v0 = Clock::now();
  auto vocab = structured::GrammarVocabulary::Create(
      **tok, static_cast<int32_t>((*model)->config().vocab_size), (*tok)->eos_ids());
  if (!vocab.ok()) {
    std::fprintf(stderr, "%s\n", vocab.status().ToString().c_str());
    return 1;
  }
  const double vocab_secs = Since(v0);
  const Clock::time_point c0 = Clock::now();
  auto c = structured::CompileGrammar(**vocab, {structured::GrammarKind::kJsonSchema, kSchema});
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    return 1;
  }
  const double compile_secs = Since(c0);
  std::printf(
      "model: %s (%s), %d threads; vocabulary to llguidance %.0f ms, schema compiled in "
      "%.2f ms\n",
      path.c_str(), (*model)->config().Summary().c_str(), threads, vocab_secs * 1e3,
      compile_secs * 1e3);

  // 1. Throughput, alternated rounds.
  std::vector<double> ratios, cpu_ratios;
  std::vector<std::vector<int32_t>> outputs;
  double mask_total = 0, con_secs = 0;
  int64_t mask_count = 0;
  std::printf(
      "\n| round | unconstrained tok/s | 8 of 16 constrained tok/s | ratio | ratio per "
      "CPU-second |\n| --- | --- | --- | --- | --- |\n");
  for (int r = 0; r < rounds; ++r) {
    std::fprintf(stderr, "[round %d/%d] ", r + 1, rounds);
    Run plain = Decode(**model, **tok, *c, threads, 16, steps, false);
    Run con = Decode(**model, **tok, *c, threads, 16, steps, true);
    std::fprintf(stderr, "done\n");
    ratios.push_back(con.tps / plain.tps);
    cpu_ratios.push_back(con.tps_cpu / plain.tps_cpu);
    mask_total += con.mask_seconds;
    con_secs += con.secs;
    mask_count += con.masks;
    for (auto& o : con.constrained_outputs) outputs.push_back(std::move(o));
    std::printf("| %d | %.1f | %.1f | %.3f | %.3f |\n", r + 1, plain.tps, con.tps, ratios.back(),
                cpu_ratios.back());
  }
  std::sort(ratios.begin(), ratios.end());
  std::sort(cpu_ratios.begin(), cpu_ratios.end());
  std::printf(
      "\ndecode throughput, half of 16 streams constrained / none: median ratio %.3f (per "
      "CPU-second %.3f; goal >= 0.9)\n",
      ratios[ratios.size() / 2], cpu_ratios[cpu_ratios.size() / 2]);
  std::printf(
      "engine: %lld masks, mean %.1f us each; masks took %.2f%% of the constrained runs' wall "
      "time\n",
      static_cast<long long>(mask_count), mask_count ? mask_total / mask_count * 1e6 : 0,
      con_secs > 0 ? 100.0 * mask_total / con_secs : 0);

  // 2. Mask time per token, replayed on one thread over what the constrained streams wrote.
  std::vector<double> times;
  std::vector<uint32_t> mask(engine::MaskWords((*vocab)->vocab_size()));
  for (const auto& out : outputs) {
    auto m = (*c)->Clone();
    for (int32_t t : out) {
      const Clock::time_point t0 = Clock::now();
      if (!m->ComputeMask(mask).ok()) break;
      times.push_back(Since(t0));
      if (m->IsTerminated() || !m->Accept(t).ok()) break;
    }
  }
  std::sort(times.begin(), times.end());
  if (!times.empty()) {
    std::printf(
        "mask time per token (%zu masks over %zu outputs, one thread): median %.1f us, "
        "p99 %.1f us, max %.1f us\n",
        times.size(), outputs.size(), times[times.size() / 2] * 1e6,
        times[std::min(times.size() - 1, times.size() * 99 / 100)] * 1e6, times.back() * 1e6);
  }
  return 0;
}
