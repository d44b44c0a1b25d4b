// `kinfer serve`: the OpenAI-compatible server (see server/server.h).
#include <signal.h>

#include <cmath>
#include <cstdlib>

#include <optional>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/json.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "kernels/matmul.h"
#include "server/server.h"

namespace kinfer::cli {
namespace {

// --lora-modules NAME=PATH, or vLLM's JSON form {"name": ..., "path": ..., "base_model_name": ...}.
std::optional<std::pair<std::string, std::string>> ParseLoraModule(const std::string& spec) {
  if (!spec.empty() && spec[0] == '{') {
    auto j = ParseJson(spec, "--lora-modules", 8);
    if (!j.ok() || !j->is_object()) return std::nullopt;
    auto n = j->find("name"), p = j->find("path");
    if (n == j->end() || p == j->end() || !n->is_string() || !p->is_string()) return std::nullopt;
    if (n->get<std::string>().empty() || p->get<std::string>().empty()) return std::nullopt;
    return std::pair{n->get<std::string>(), p->get<std::string>()};
  }
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) return std::nullopt;
  return std::pair{spec.substr(0, eq), spec.substr(eq + 1)};
}

}  // namespace

// `kinfer serve --help` lists the flags by topic, as vLLM's does (its ModelConfig, CacheConfig,
// SchedulerConfig, Frontend... groups). A new flag belongs in one of these: the unit test
// (tests/unit/cli/serve_help_test.cc) fails for a flag left in no group.
const std::vector<std::pair<std::string, std::vector<std::string>>>& ServeFlagGroups() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kGroups = {
      {"Model",
       {"--model", "--served-model-name", "--chat-template", "--max-model-len", "--pooler-config"}},
      {"Frontend (HTTP, OpenAI API, security)",
       {"--host", "--port", "--api-key", "--api-key-file", "--ssl-certfile", "--ssl-keyfile",
        "--max-request-body-bytes", "--io-threads", "--no-playground", "--tool-call-parser",
        "--reasoning-parser", "--enable-auto-tool-choice"}},
      {"Scheduler", {"--max-num-seqs", "--max-num-batched-tokens", "--max-queue-len"}},
      {"KV cache",
       {"--kv-cache-memory", "--kv-cache-dtype", "--block-size", "--no-enable-prefix-caching"}},
      {"Device and compute",
       {"--device", "--gpu-memory-utilization", "--threads", "--matmul-precision"}},
      {"LoRA",
       {"--enable-lora", "--lora-modules", "--max-loras", "--max-lora-rank", "--max-cpu-loras",
        "--allow-runtime-lora-updating"}},
      {"Metrics", {"--metrics-port", "--protect-metrics", "--metrics-vllm-names"}},
      {"Shutdown", {"--drain-delay", "--shutdown-timeout"}},
      {"Logging", {"--log-format", "--log-prompts", "--no-access-log"}},
  };
  return kGroups;
}

void GroupServeFlags(CLI::App& cmd) {
  for (const auto& [group, names] : ServeFlagGroups()) {
    for (const std::string& name : names) {
      if (CLI::Option* opt = cmd.get_option_no_throw(name)) opt->group(group);
    }
  }
}

void AddServeCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve", "Serve a model over the OpenAI API (/v1/completions, /v1/chat/completions, ...)");
  auto o = std::make_shared<server::ServerOptions>();
  auto kv_memory = std::make_shared<std::string>();
  auto kv_dtype = std::make_shared<std::string>("f16");
  auto log_format = std::make_shared<std::string>("text");
  auto no_prefix = std::make_shared<bool>(false);
  auto no_access_log = std::make_shared<bool>(false);
  auto threads = std::make_shared<int>(0);
  auto max_body = std::make_shared<std::string>("32MiB");
  auto precision = std::make_shared<std::string>("fast");
  auto lora_modules = std::make_shared<std::vector<std::string>>();
  auto device = std::make_shared<std::string>("auto");

  cmd->add_option("--model", o->model_path, "GGUF file, HF model directory or llama2.c .bin")
      ->required();
  cmd->add_option("--host", o->http.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->http.port, "Port for the API")->capture_default_str();
  cmd->add_option("--served-model-name", o->served_model_names,
                  "Name(s) clients use in the 'model' field (default: the --model argument)");
  cmd->add_option("--chat-template", o->chat_template_file,
                  "Jinja chat template file that overrides the model's own");
  cmd->add_option("--pooler-config", o->pooler_config,
                  "Serve /v1/embeddings with this pooling, over the model's own config: JSON like "
                  "'{\"pooling_type\": \"MEAN\", \"normalize\": true, "
                  "\"matryoshka_dimensions\": [64, 128]}' (pooling_type LAST, MEAN or CLS; "
                  "is_matryoshka: any 'dimensions' allowed)");
  cmd->add_option("--tool-call-parser", o->tool_call_parser,
                  "How the model writes tool calls, for tool_choice auto: hermes, llama3_json, "
                  "mistral, qwen3_coder, pythonic, none (default: auto, from the chat template)")
      ->check(CLI::IsMember(
          {"auto", "none", "hermes", "llama3_json", "mistral", "qwen3_coder", "pythonic"}))
      ->capture_default_str();
  cmd->add_option("--reasoning-parser", o->reasoning_parser,
                  "Split <think> reasoning from the answer: deepseek_r1, qwen3, none (default: "
                  "auto, from the chat template)")
      ->check(CLI::IsMember({"auto", "none", "deepseek_r1", "qwen3"}))
      ->capture_default_str();
  cmd->add_flag("--enable-auto-tool-choice", o->enable_auto_tool_choice,
                "Accepted for vLLM compatibility: tool_choice auto is on whenever the tool-call "
                "format is known");
  cmd->add_option("--api-key", o->api_keys,
                  "Require 'Authorization: Bearer KEY' on /v1/* (repeatable; also $KINFER_API_KEY, "
                  "comma-separated)");
  cmd->add_option("--api-key-file", o->api_key_files,
                  "File with one API key per line, e.g. a mounted Kubernetes Secret (repeatable)");
  cmd->add_option("--max-model-len", o->engine.max_model_len,
                  "Longest prompt plus output, in tokens (default: the model's, or what the KV "
                  "cache holds)");
  cmd->add_option("--max-num-seqs", o->engine.scheduler.max_num_seqs,
                  "Most sequences in one engine step")
      ->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", o->engine.scheduler.max_num_batched_tokens,
                  "Most tokens (prefill chunks and decodes) in one engine step")
      ->capture_default_str();
  cmd->add_option("--kv-cache-memory", *kv_memory,
                  "Bytes for the KV cache, e.g. 2GiB (default: a quarter of available memory, at "
                  "most 4 GiB)");
  cmd->add_option("--kv-cache-dtype", *kv_dtype, "KV cache element type")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--block-size", o->engine.block_size, "Tokens per KV cache block")
      ->capture_default_str();
  cmd->add_flag("--no-enable-prefix-caching", *no_prefix, "Turn off automatic prefix caching");
  cmd->add_option("--threads", *threads, "Compute threads (default: all cores)");
  cmd->add_flag("--enable-lora", o->enable_lora,
                "Serve LoRA adapters (implied by --lora-modules and runtime loading)");
  cmd->add_option("--lora-modules", *lora_modules,
                  "LoRA adapters to serve, as NAME=PATH or vLLM's JSON {\"name\": ..., \"path\": "
                  "...}: a PEFT directory or a GGUF LoRA file; requests pick one by 'model'")
      ->expected(1, -1);
  o->engine.scheduler.max_loras = 4;
  cmd->add_option("--max-loras", o->engine.scheduler.max_loras,
                  "Most distinct LoRA adapters in one engine step; requests of others wait")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-lora-rank", o->lora.max_rank, "Largest LoRA rank accepted")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-cpu-loras", o->lora.max_cpu_loras,
                  "LoRA adapters kept in memory, least recently used evicted and read again "
                  "when needed (default: --max-loras; at least --max-loras)");
  cmd->add_flag("--allow-runtime-lora-updating", o->allow_runtime_lora_updating,
                "Allow POST /v1/load_lora_adapter and /v1/unload_lora_adapter (behind the API "
                "key; also VLLM_ALLOW_RUNTIME_LORA_UPDATING=true)");
  cmd->add_option("--device", *device,
                  "Where the model runs: auto (a GPU when this build has CUDA and finds one), cpu "
                  "or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", o->engine.gpu_memory_utilization,
                  "Share of the GPU's memory for weights, activations and the KV cache (without "
                  "--kv-cache-memory the cache takes the rest)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--matmul-precision", *precision,
                  "fast: round activations where a faster matmul needs it (8-bit terms, bf16 on "
                  "AMX), within transformers' own bf16 deviation; exact: f32 activations")
      ->check(CLI::IsMember({"fast", "exact"}))
      ->capture_default_str();
  cmd->add_option("--ssl-certfile", o->http.tls_cert_file, "PEM certificate chain: serve HTTPS");
  cmd->add_option("--ssl-keyfile", o->http.tls_key_file, "PEM private key for --ssl-certfile");
  cmd->add_option("--metrics-port", o->metrics_port,
                  "Serve /metrics (and /health, /ready) on this port too, apart from the API "
                  "(0: only on the API port)")
      ->capture_default_str();
  cmd->add_flag("--protect-metrics", o->protect_metrics, "Require the API key on /metrics too");
  cmd->add_flag("--metrics-vllm-names", o->metrics_vllm_names,
                "Also export every metric under the vllm: prefix, for existing dashboards");
  cmd->add_option("--drain-delay", o->drain_delay_seconds,
                  "Seconds after SIGTERM during which new requests are still served (while "
                  "endpoints are removed); /ready is 503 from the signal on")
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout", o->shutdown_timeout_seconds,
                  "Seconds after SIGTERM for in-flight requests to finish before they are aborted")
      ->capture_default_str();
  cmd->add_option("--max-queue-len", o->max_queue_len,
                  "Requests waiting to start above which new ones get 429 (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--max-request-body-bytes", *max_body, "Larger request bodies get 413")
      ->capture_default_str();
  cmd->add_option("--io-threads", o->http.io_threads, "HTTP I/O threads")->capture_default_str();
  cmd->add_option("--log-format", *log_format, "Log lines as text or JSON")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--log-prompts", o->log_prompts, "Include prompt text in the access log");
  cmd->add_flag("--no-access-log", *no_access_log, "No per-request JSON lines on stdout");
  auto no_playground = std::make_shared<bool>(false);
  cmd->add_flag("--no-playground", *no_playground,
                "Do not serve the chat playground page at / (behind the API key when one is set)");

  GroupServeFlags(*cmd);

  cmd->callback([=] {
    if (*log_format == "json")
      InitLogging(spdlog::level::to_string_view(spdlog::get_level()).data(), LogFormat::kJson);
    server::ServerOptions opts = *o;
    if (!kv_memory->empty()) {
      auto b = ParseBytes(*kv_memory);
      if (!b) {
        fmt::print(stderr, "error: --kv-cache-memory '{}': expected bytes like 2GiB\n", *kv_memory);
        ExitCode() = 2;
        return;
      }
      opts.engine.kv_cache_bytes = *b;
    }
    auto mb = ParseBytes(*max_body);
    if (!mb || *mb <= 0) {
      fmt::print(stderr, "error: --max-request-body-bytes '{}': expected bytes\n", *max_body);
      ExitCode() = 2;
      return;
    }
    opts.http.max_body_bytes = static_cast<uint64_t>(*mb);
    opts.engine.kv_cache_dtype = *kv_dtype == "f32" ? DType::kF32 : DType::kF16;
    opts.engine.enable_prefix_caching = !*no_prefix;
    opts.engine.device = engine::ResolveDevice(*engine::ParseDevice(*device));
    opts.engine.num_threads = *threads > 0 ? *threads : DefaultThreadCount();
    opts.access_log = !*no_access_log;
    kernels::SetMatMulPrecision(*precision == "exact" ? kernels::MatMulPrecision::kExact
                                                      : kernels::MatMulPrecision::kFast);
    opts.playground = !*no_playground;
    for (const std::string& spec : *lora_modules) {
      auto m = ParseLoraModule(spec);
      if (!m) {
        fmt::print(stderr,
                   "error: --lora-modules '{}': expected NAME=PATH or {{\"name\": ..., \"path\": "
                   "...}}\n",
                   spec);
        ExitCode() = 2;
        return;
      }
      opts.lora_modules.push_back(*m);
    }
    if (const char* env = std::getenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING")) {
      const std::string v = env;
      if (v == "1" || v == "true" || v == "True" || v == "TRUE") {
        opts.allow_runtime_lora_updating = true;
      }
    }
    if (opts.lora.max_cpu_loras == 0) opts.lora.max_cpu_loras = opts.engine.scheduler.max_loras;
    if (opts.lora.max_cpu_loras < opts.engine.scheduler.max_loras) {
      fmt::print(stderr, "error: --max-cpu-loras ({}) must be at least --max-loras ({})\n",
                 opts.lora.max_cpu_loras, opts.engine.scheduler.max_loras);
      ExitCode() = 2;
      return;
    }

    // Signals go to Server::Run's waiter: block them before any thread starts.
    BlockStopSignals();

    server::Server srv(opts);
    ExitCode() = StartAndRun(srv);
  });
}

}  // namespace kinfer::cli
