// `kinfer generate`: run a prompt through a model on the engine and stream the continuation to
// stdout as it is generated.
//
//   kinfer generate --model stories260K.bin --prompt "Once upon a time" -n 64 --temperature 0
#include <cstdio>
#include <future>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/engine_text.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string tokenizer;  // default: the model's own
  std::string prompt;
  std::string prompt_ids;
  int max_tokens = 128;
  float temperature = 0.8f;
  float top_p = 0.95f;
  int top_k = 0;
  int64_t seed = -1;
  int threads = 0;
  bool ignore_eos = false;
  bool no_bos = false;
  std::string kv_dtype = "f16";
  std::string device = "auto";
  double gpu_memory_utilization = 0.9;
};

int RunGenerate(const GenerateOptions& o) {
  auto fail = [](const Status& s) {
    fmt::print(stderr, "error: {}\n", s.message());
    return 1;
  };
  auto device = engine::ParseDevice(o.device);
  if (!device.ok()) return fail(device.status());
  const engine::Device dev = engine::ResolveDevice(*device);
  model::LoadOptions load;
  load.pack_weights = dev == engine::Device::kCpu;  // CPU layouts only help the CPU
  auto model = model::LoadModel(o.model, load);
  if (!model.ok()) return fail(model.status());
  auto tok = tokenizer::Tokenizer::Load(o.tokenizer.empty() ? o.model : o.tokenizer);
  if (!tok.ok()) return fail(tok.status());

  std::vector<int32_t> prompt;
  if (!o.prompt_ids.empty()) {
    std::stringstream ss(o.prompt_ids);
    std::string item;
    while (std::getline(ss, item, ',')) {
      char* end = nullptr;
      long v = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0') {
        return fail(InvalidArgumentError("--prompt-ids: '{}' is not a token id", item));
      }
      prompt.push_back(static_cast<int32_t>(v));
    }
  } else {
    prompt = (*tok)->Encode(o.prompt, !o.no_bos, /*parse_special=*/true);
  }
  if (prompt.empty())
    return fail(InvalidArgumentError("the prompt is empty: give --prompt or --prompt-ids"));

  engine::EngineOptions eo;
  eo.num_threads = o.threads > 0 ? o.threads : DefaultThreadCount();
  eo.kv_cache_bytes = 256 << 20;
  eo.kv_cache_dtype = o.kv_dtype == "f32" ? DType::kF32 : DType::kF16;
  eo.device = dev;
  eo.gpu_memory_utilization = o.gpu_memory_utilization;
  eo.max_model_len = static_cast<int32_t>(
      std::min<int64_t>((*model)->config().max_position_embeddings,
                        static_cast<int64_t>(prompt.size()) + o.max_tokens + 1));
  const tokenizer::Tokenizer* tp = tok->get();
  eo.text_decoder = tokenizer::EngineTextDecoder(*tp);
  eo.eos_token_ids = (*tok)->eos_ids();
  for (int64_t e : (*model)->config().eos_token_ids) {
    if (std::find(eo.eos_token_ids.begin(), eo.eos_token_ids.end(), e) == eo.eos_token_ids.end()) {
      eo.eos_token_ids.push_back(static_cast<int32_t>(e));
    }
  }
  auto engine = engine::Engine::Create(**model, eo);
  if (!engine.ok()) return fail(engine.status());

  engine::Request r;
  r.id = "generate";
  r.prompt_tokens = prompt;
  r.params.max_tokens = o.max_tokens;
  r.params.temperature = o.temperature;
  r.params.top_p = o.top_p;
  r.params.top_k = o.top_k;
  r.params.ignore_eos = o.ignore_eos;
  if (o.seed >= 0) r.params.seed = static_cast<uint64_t>(o.seed);
  std::promise<engine::Usage> done;
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> first;
  Status st = (*engine)->Submit(r, [&](const engine::RequestOutput& out) {
    for (const auto& s : out.seqs) {
      if (!s.token_ids.empty() && !first) first = std::chrono::steady_clock::now();
      std::fwrite(s.text.data(), 1, s.text.size(), stdout);
      std::fflush(stdout);
    }
    if (out.finished) done.set_value(out.usage);
  });
  if (!st.ok()) return fail(st);
  engine::Usage usage = done.get_future().get();
  const auto end = std::chrono::steady_clock::now();
  std::fputc('\n', stdout);
  const double prefill = first ? std::chrono::duration<double>(*first - start).count() : 0;
  const double decode = first ? std::chrono::duration<double>(end - *first).count() : 0;
  fmt::print(
      stderr, "[{} prompt tokens in {:.3f} s; {} generated, {:.1f} tokens/s after the first]\n",
      usage.prompt_tokens, prefill, usage.completion_tokens,
      usage.completion_tokens > 1 && decode > 0 ? (usage.completion_tokens - 1) / decode : 0.0);
  return 0;
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt and stream it to stdout");
  auto o = std::make_shared<GenerateOptions>();
  cmd->add_option("--model", o->model, "GGUF file, HF model directory or llama2.c .bin")
      ->required();
  cmd->add_option("--tokenizer", o->tokenizer,
                  "Tokenizer file or directory (default: the model's; for a llama2.c .bin, a "
                  "tok*.bin beside it)");
  auto* p = cmd->add_option("--prompt", o->prompt, "Prompt text");
  auto* ids = cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt as comma-separated token ids");
  p->excludes(ids);
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0 for greedy")->capture_default_str();
  cmd->add_option("--top-p", o->top_p)->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "0: no limit")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for sampling (default: random)");
  cmd->add_option("--threads", o->threads, "Compute threads (default: all cores)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token to a text prompt");
  cmd->add_option("--kv-cache-dtype", o->kv_dtype, "KV cache element type")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--device", o->device,
                  "Where the model runs: auto (a GPU when there is one), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", o->gpu_memory_utilization,
                  "Share of the GPU's memory for weights, activations and KV cache")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->callback([o] { ExitCode() = RunGenerate(*o); });
}

}  // namespace kinfer::cli
