// `kinfer serve`: one process serving one model over the OpenAI API. It listens before the
// model loads (so probes answer during a long load), reports health and readiness truthfully,
// exports Prometheus metrics, and on SIGTERM turns unready, drains and exits 0.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/lora_registry.h"
#include "server/http_server.h"

namespace kinfer::server {

struct ServerOptions {
  std::string model_path;
  std::vector<std::string> served_model_names;  // empty: the --model argument
  std::string chat_template_file;               // overrides the model's template
  std::string tool_call_parser = "auto";        // auto: detected from the chat template
  std::string reasoning_parser = "auto";
  bool enable_auto_tool_choice = false;  // vLLM's flag; auto is on when a format is known
  HttpServerOptions http;
  int metrics_port = 0;  // 0: /metrics on the API port
  std::vector<std::string> api_keys;
  std::vector<std::string> api_key_files;
  bool protect_metrics = false;
  bool metrics_vllm_names = false;
  double drain_delay_seconds = 5;
  double shutdown_timeout_seconds = 30;
  int max_queue_len = 1024;  // requests not yet generating; over it: 429
  bool log_prompts = false;
  bool access_log = true;
  engine::EngineOptions engine;
  // LoRA adapters served from the start (--lora-modules NAME=PATH), how they are kept
  // (--max-lora-rank, --max-cpu-loras; --max-loras is engine.scheduler.max_loras), and whether
  // /v1/load_lora_adapter and /v1/unload_lora_adapter may change them at run time.
  std::vector<std::pair<std::string, std::string>> lora_modules;
  engine::LoraRegistryOptions lora;
  bool enable_lora = false;  // also implied by lora_modules or runtime updating
  bool allow_runtime_lora_updating = false;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Checks the options, starts listening and starts loading the model in the background.
  Status Start();
  // Blocks until SIGTERM or SIGINT (which the caller must have blocked in every thread), then
  // drains and stops. Returns the process exit code.
  int Run();
  // The drain sequence, as on SIGTERM: unready now, refuse new work after the drain delay, let
  // in-flight requests finish until the shutdown timeout, then stop.
  void Shutdown();

  int port() const;
  int metrics_port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kinfer::server
