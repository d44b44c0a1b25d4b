#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/json.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "core/progress_log.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "server/auth.h"
#include "server/chat_renderer.h"
#include "server/embeddings.h"
#include "server/front_door.h"
#include "server/messages_api.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/playground.h"
#include "server/request_id.h"
#include "tokenizer/engine_text.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// "%2F" -> "/"; a malformed escape stays as it is.
std::string PercentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<double> TokenBuckets(int32_t max) {
  std::vector<double> b;
  for (double m = 1; m <= max; m *= 10) {
    for (double k : {1.0, 2.0, 5.0}) {
      if (k * m <= max) b.push_back(k * m);
    }
  }
  return b;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  ApiKeys keys;
  std::unique_ptr<HttpServer> http, metrics_http;
  MetricsRegistry registry;
  std::vector<std::string> prefixes{"kinfer:"};

  enum class State { kLoading, kReady, kFailed };
  std::atomic<State> state{State::kLoading};
  std::atomic<bool> draining{false};  // /ready answers 503
  std::atomic<bool> refusing{false};  // new requests get 503
  std::atomic<int> inflight{0};       // generation requests not yet answered
  std::atomic<int> queued{0};         // of those, not yet generating
  std::string load_error;
  std::thread loader;
  std::mutex load_mu;  // guards what /ready reports during the load
  std::string load_stage;
  double load_fraction = 0;

  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<EmbeddingsRoute> embeddings;  // set when the model is an embedding model
  std::unique_ptr<engine::LoraRegistry> loras;  // null when LoRA is off
  std::unique_ptr<structured::GrammarVocabulary> grammar;
  ModelInfo info;
  int64_t created = UnixNow();

  std::mutex mu;
  std::condition_variable cv;
  bool shutdown_requested = false;
  std::mutex log_mu;

  // Metric families.
  MetricFamily* running = nullptr;
  MetricFamily* waiting = nullptr;
  MetricFamily* kv_usage = nullptr;
  MetricFamily* prefix_queries = nullptr;
  MetricFamily* prefix_hits = nullptr;
  MetricFamily* preemptions = nullptr;
  MetricFamily* prompt_tokens = nullptr;
  MetricFamily* generation_tokens = nullptr;
  MetricFamily* request_success = nullptr;
  MetricFamily* http_requests = nullptr;
  MetricFamily* ttft = nullptr;
  MetricFamily* itl = nullptr;
  MetricFamily* e2e = nullptr;
  MetricFamily* queue_time = nullptr;
  MetricFamily* req_prompt_tokens = nullptr;
  MetricFamily* req_gen_tokens = nullptr;
  MetricFamily* cache_config = nullptr;
  MetricFamily* lora_info = nullptr;

  bool LoraEnabled() const {
    return options.enable_lora || !options.lora_modules.empty() ||
           options.allow_runtime_lora_updating;
  }
  bool IsServedName(const std::string& name) const {
    return std::find(info.served_names.begin(), info.served_names.end(), name) !=
           info.served_names.end();
  }

  Labels ModelLabels() const {
    return {{"model_name", info.served_names.empty() ? "" : info.served_names[0]}};
  }

  void SetupMetrics();
  void Load();
  void Handle(const std::shared_ptr<HttpExchange>& ex, bool metrics_listener);
  void Reply(HttpExchange& ex, int status, const std::string& body, const std::string& request_id,
             const std::string& content_type = "application/json", Headers headers = {});
  void ReplyError(HttpExchange& ex, const ApiError& e, const std::string& request_id,
                  Headers headers = {});
  void HandleGeneration(const std::shared_ptr<HttpExchange>& ex, Endpoint endpoint,
                        const std::string& request_id, Clock::time_point start);
  void HandleTokenize(HttpExchange& ex, const std::string& request_id);
  void HandleCountTokens(HttpExchange& ex, const std::string& request_id);
  void HandleLoraUpdate(HttpExchange& ex, bool load, const std::string& request_id);
  Status LoadLoraModules();
  void HandleDetokenize(HttpExchange& ex, const std::string& request_id);
  void SetupEmbeddings(EmbeddingModel model);
  void HandleEmbeddings(const std::shared_ptr<HttpExchange>& ex, const std::string& request_id,
                        Clock::time_point start);
  Json ModelCard(const std::string& name) const;
  Json ModelCards() const;  // the served names, then the LoRA adapters
  void AccessLog(const Json& line);
};

namespace {

// One generation request in flight: its exchange, its parsed form, and what the engine has
// produced so far for each of its prompts.
struct RequestContext : std::enable_shared_from_this<RequestContext> {
  Server::Impl* srv = nullptr;
  std::shared_ptr<HttpExchange> ex;
  GenerationRequest req;
  std::unique_ptr<ResponseWriter> writer;  // front doors (front_door.h); null: OpenAI's chat
  std::string id;                          // response id: cmpl-... / chatcmpl-...
  std::string request_id;                  // X-Request-Id
  int64_t created = 0;
  Clock::time_point start;
  std::mutex mu;
  std::vector<ChoiceState> choices;
  std::vector<std::vector<engine::TokenLogprob>> prompt_logprobs;  // per prompt
  std::vector<Clock::time_point> last_output;                      // per prompt
  std::vector<bool> started;                                       // per prompt: generating
  int remaining = 0;
  engine::Usage usage;
  std::optional<Clock::time_point> first_token;
  Status error;
  bool client_gone = false;
  bool done = false;

  std::string EngineId(size_t prompt) const { return request_id + "#" + std::to_string(prompt); }
  void OnOutput(size_t prompt, engine::RequestOutput out);
  void Finish();
};

void RequestContext::OnOutput(size_t prompt, engine::RequestOutput out) {
  std::lock_guard<std::mutex> lk(mu);
  if (done) return;
  Server::Impl& s = *srv;
  const Labels labels = s.ModelLabels();
  const Clock::time_point now = Clock::now();
  if (!started[prompt] && (!out.seqs.empty() || out.finished)) {
    started[prompt] = true;
    s.queued--;
  }
  size_t new_tokens = 0;
  for (const auto& so : out.seqs) new_tokens += so.token_ids.size();
  if (new_tokens > 0) {
    if (out.first_token && !first_token) first_token = out.first_token;
    if (last_output[prompt] != Clock::time_point()) {
      s.itl->Observe(labels, Seconds(now - last_output[prompt]) / static_cast<double>(new_tokens));
    }
    last_output[prompt] = now;
  }
  if (!out.prompt_logprobs.empty()) {
    prompt_logprobs[prompt] = out.prompt_logprobs;
    for (int32_t j = 0; j < req.params.n; ++j) {
      choices[prompt * static_cast<size_t>(req.params.n) + static_cast<size_t>(j)].prompt_logprobs =
          out.prompt_logprobs;
    }
  }
  if (!out.error.ok() && error.ok()) error = out.error;
  for (const auto& so : out.seqs) {
    const size_t index = prompt * static_cast<size_t>(req.params.n) + static_cast<size_t>(so.index);
    ChoiceState& c = choices[index];
    if (writer && req.stream && error.ok() && !client_gone) {
      std::string events = writer->StreamDelta(so);
      if (!events.empty()) ex->Send(events);
    } else if (req.stream && error.ok() && !client_gone) {
      const bool empty = so.text.empty() && !so.finish_reason && so.logprobs.empty() &&
                         !(req.endpoint == Endpoint::kChat && !c.sent_role) &&
                         !(req.echo && !c.sent_role);
      if (!empty) {
        engine::Usage running_usage;
        if (req.continuous_usage_stats) running_usage = out.usage;
        std::string events = RenderStreamChunk(
            req, id, created, static_cast<int32_t>(index), c, so, prompt_logprobs[prompt], s.info,
            req.continuous_usage_stats ? &running_usage : nullptr);
        if (!events.empty()) ex->Send(events);
      }
    } else {
      c.text += so.text;
    }
    c.token_ids.insert(c.token_ids.end(), so.token_ids.begin(), so.token_ids.end());
    c.logprobs.insert(c.logprobs.end(), so.logprobs.begin(), so.logprobs.end());
    if (so.finish_reason) {
      c.finish_reason = so.finish_reason;
      c.stop_string = so.stop_string;
      c.stop_token = so.stop_token;
    }
  }
  if (!out.finished) return;

  remaining--;
  usage.prompt_tokens += out.usage.prompt_tokens;
  usage.completion_tokens += out.usage.completion_tokens;
  usage.cached_tokens += out.usage.cached_tokens;
  // Per engine request metrics.
  std::string reason = "abort";
  for (const auto& so : out.seqs) {
    if (so.finish_reason) reason = std::string(FinishReasonForApi(*so.finish_reason));
  }
  if (out.error.ok() && reason != "abort")
    s.request_success->Add({labels[0], {"finished_reason", reason}});
  if (out.first_token) s.ttft->Observe(labels, Seconds(*out.first_token - out.arrival));
  if (out.first_scheduled)
    s.queue_time->Observe(labels, Seconds(*out.first_scheduled - out.arrival));
  s.e2e->Observe(labels, Seconds(now - out.arrival));
  s.req_prompt_tokens->Observe(labels, out.usage.prompt_tokens);
  s.req_gen_tokens->Observe(labels, out.usage.completion_tokens);
  if (remaining == 0) Finish();
}

// Called with mu held, once every prompt's engine request has finished.
void RequestContext::Finish() {
  done = true;
  Server::Impl& s = *srv;
  int status = 200;
  if (client_gone) {
    status = 499;  // as nginx logs a client that closed the connection
  } else if (req.stream && writer) {
    ex->Send(writer->StreamEnd(usage, error));
    if (!error.ok()) status = 500;
    ex->End();
  } else if (req.stream) {
    if (!error.ok()) {
      ApiError e;
      e.status = 500;
      e.type = "internal_server_error";
      e.message = error.message();
      ex->Send("data: " + ErrorJson(e) + "\n\n");
      status = 500;
    } else if (req.include_usage) {
      ex->Send(RenderUsageChunk(req, id, created, usage));
    }
    ex->Send("data: [DONE]\n\n");
    ex->End();
  } else if (!error.ok()) {
    ApiError e;
    e.status = error.code() == StatusCode::kUnavailable ? 503 : 500;
    e.type = "internal_server_error";
    e.message = error.message();
    status = e.status;
    s.ReplyError(*ex, e, request_id);
  } else if (writer) {
    s.Reply(*ex, 200, writer->Response(choices[0], usage), request_id);
  } else {
    s.Reply(*ex, 200, RenderResponse(req, id, created, choices, usage, s.info), request_id);
  }
  if (req.stream || client_gone)
    s.http_requests->Add({s.ModelLabels()[0], {"status", std::to_string(status)}});
  s.inflight--;
  s.cv.notify_all();
  if (s.options.access_log) {
    Json line;
    line["request_id"] = request_id;
    line["method"] = ex->method();
    line["path"] = ex->path();
    line["status"] = status;
    line["latency_ms"] = Seconds(Clock::now() - start) * 1000;
    line["ttft_ms"] = first_token ? Json(Seconds(*first_token - start) * 1000) : Json(nullptr);
    line["prompt_tokens"] = usage.prompt_tokens;
    line["completion_tokens"] = usage.completion_tokens;
    line["cached_tokens"] = usage.cached_tokens;
    line["stream"] = req.stream;
    line["remote"] = ex->remote();
    if (s.options.log_prompts) line["prompt"] = req.prompt_texts;
    s.AccessLog(line);
  }
  ex.reset();
}

}  // namespace

void Server::Impl::SetupMetrics() {
  if (options.metrics_vllm_names) prefixes.push_back("vllm:");
  running =
      &registry.Gauge("num_requests_running", "Number of requests in model execution batches.");
  waiting = &registry.Gauge("num_requests_waiting", "Number of requests waiting to be processed.");
  kv_usage = &registry.Gauge("kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.");
  prefix_queries = &registry.Counter("prefix_cache_queries",
                                     "Prefix cache queries, in terms of number of queried tokens.");
  prefix_hits = &registry.Counter("prefix_cache_hits",
                                  "Prefix cache hits, in terms of number of cached tokens.");
  preemptions = &registry.Counter("num_preemptions", "Cumulative number of preemptions.");
  prompt_tokens = &registry.Counter("prompt_tokens", "Number of prefill tokens processed.");
  generation_tokens =
      &registry.Counter("generation_tokens", "Number of generation tokens processed.");
  request_success =
      &registry.Counter("request_success", "Count of successfully processed requests.");
  http_requests = &registry.Counter("http_requests", "HTTP requests answered, by status code.");
  ttft = &registry.Histogram(
      "time_to_first_token_seconds", "Histogram of time to first token in seconds.",
      {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
       1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0});
  itl = &registry.Histogram("inter_token_latency_seconds",
                            "Histogram of inter-token latency in seconds.",
                            {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
                             2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0});
  const std::vector<double> latency = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                       5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                       60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
  e2e = &registry.Histogram("e2e_request_latency_seconds",
                            "Histogram of end to end request latency in seconds.", latency);
  queue_time =
      &registry.Histogram("request_queue_time_seconds",
                          "Histogram of time spent in WAITING phase for request.", latency);
  cache_config = &registry.Gauge("cache_config_info", "Information of the KV cache configuration.");
  if (LoraEnabled()) {
    lora_info = &registry.Gauge("lora_requests_info", "Running stats on lora requests.");
  }
  registry.OnCollect([this] {
    if (!engine) return;
    engine::EngineStats st = engine->Stats();
    if (lora_info) {
      // As vLLM: one series, its labels the adapters of running and waiting requests, its value
      // the time of the reading. Routers read the labels to prefer replicas holding an adapter.
      lora_info->Clear();
      lora_info->Set(
          {{"max_lora", std::to_string(st.max_loras)},
           {"running_lora_adapters", fmt::format("{}", fmt::join(st.running_lora_adapters, ","))},
           {"waiting_lora_adapters", fmt::format("{}", fmt::join(st.waiting_lora_adapters, ","))}},
          static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()) /
              1000.0);
    }
    Labels l = ModelLabels();
    running->Set(l, st.num_running);
    waiting->Set(l, st.num_waiting);
    kv_usage->Set(l, st.kv_cache_usage);
    prefix_queries->Set(l, static_cast<double>(st.prefix_cache_queries));
    prefix_hits->Set(l, static_cast<double>(st.prefix_cache_hits));
    preemptions->Set(l, static_cast<double>(st.num_preemptions));
    prompt_tokens->Set(l, static_cast<double>(st.prompt_tokens));
    generation_tokens->Set(l, static_cast<double>(st.generation_tokens));
  });
}

void Server::Impl::AccessLog(const Json& line) {
  Json l = line;
  l["time"] = UnixNow();
  std::string s = l.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::lock_guard<std::mutex> lk(log_mu);
  std::fprintf(stdout, "%s\n", s.c_str());
  std::fflush(stdout);
}

void Server::Impl::Load() {
  auto fail = [&](const Status& st) {
    load_error = st.message();
    KINFER_LOG_ERROR("cannot load the model: {}", st.message());
    state = State::kFailed;
    std::lock_guard<std::mutex> lk(mu);
    shutdown_requested = true;
    cv.notify_all();
  };
  const Clock::time_point t0 = Clock::now();
  KINFER_LOG_INFO("loading {}", options.model_path);
  // Test hook: stretches the load so tests can watch the probes during it.
  if (const char* delay = std::getenv("KINFER_TEST_LOAD_DELAY_MS")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
  }
  if (LoraEnabled() && options.engine.device != engine::Device::kCpu) {
    return fail(UnimplementedError("LoRA adapters run on the CPU backend only: use --device cpu"));
  }
  // A large file takes a while: the log and /ready say how far the load is. (Test hook: a
  // progress line at every update.)
  ProgressLog progress_log("loading " + options.model_path,
                           std::getenv("KINFER_TEST_PROGRESS_LINES") ? 0.0 : 2.0);
  model::LoadOptions load_options;
  load_options.pack_weights = options.engine.device == engine::Device::kCpu;  // CPU layouts
  load_options.progress = [this, &progress_log](const model::LoadProgress& p) {
    progress_log.Update(p.stage, p.done, p.total);
    std::lock_guard<std::mutex> lk(load_mu);
    load_stage = std::string(p.stage);
    load_fraction = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 1;
  };
  auto m = model::LoadModel(options.model_path, load_options);
  if (!m.ok()) return fail(m.status());
  model = std::move(*m);
  if ((model->pooling() || !options.pooler_config.empty()) &&
      options.engine.device != engine::Device::kCpu) {
    // The CUDA backend has no hidden-state output (model::Backend::ForwardPooling) yet.
    return fail(UnimplementedError(
        "{} is an embedding model: embeddings run on the CPU backend only: use --device cpu",
        options.model_path));
  }
  KINFER_LOG_INFO("model: {} ({:.1f} M parameters, {} MiB of weights)", model->config().Summary(),
                  model->num_parameters() / 1e6, model->weight_bytes() >> 20);
  model::ReadWeights(*model, load_options.progress);
  auto t = tokenizer::Tokenizer::Load(options.model_path);
  if (!t.ok()) return fail(t.status());
  tok = std::move(*t);
  std::string template_source = tok->chat_template();
  if (!options.chat_template_file.empty()) {
    auto text = ReadFileToString(options.chat_template_file);
    if (!text.ok()) return fail(text.status().WithPrefix("--chat-template"));
    template_source = *text;
  }
  if (!template_source.empty()) {
    auto renderer = MakeChatRenderer(template_source, *tok);
    if (renderer.ok()) {
      info.chat = std::move(*renderer);
    } else if (!options.chat_template_file.empty()) {
      return fail(renderer.status().WithPrefix("--chat-template " + options.chat_template_file));
    } else {
      // The model's own template: serve completions anyway, and say why chat cannot work.
      KINFER_LOG_WARN("the model's chat template cannot be used: {}", renderer.status().message());
      std::string why = renderer.status().message();
      info.chat = [why](const Json&, const ChatRenderOptions&) -> Result<std::string> {
        return InvalidArgumentError("the model's chat template cannot be used: {}", why);
      };
    }
  } else {
    KINFER_LOG_WARN(
        "the model has no chat template: /v1/chat/completions will answer 400 "
        "(pass --chat-template FILE)");
  }
  engine::EngineOptions eo = options.engine;
  // Test hook: every sampled token takes this long, so tests can act while streams are in flight
  // on a model that would otherwise finish them in a fraction of a second.
  if (const char* delay = std::getenv("KINFER_TEST_TOKEN_DELAY_MS")) {
    eo.logits_observer = [ms = std::atoi(delay)](const std::string&, int32_t,
                                                 std::span<const float>) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    };
  }
  const tokenizer::Tokenizer* tp = tok.get();
  eo.text_decoder = tokenizer::EngineTextDecoder(*tp);
  if (eo.eos_token_ids.empty()) {
    eo.eos_token_ids = tok->eos_ids();
    for (int64_t e : model->config().eos_token_ids) {
      if (std::find(eo.eos_token_ids.begin(), eo.eos_token_ids.end(), e) ==
          eo.eos_token_ids.end()) {
        eo.eos_token_ids.push_back(static_cast<int32_t>(e));
      }
    }
  }
  if (LoraEnabled()) {
    Status lst = LoadLoraModules();
    if (!lst.ok()) return fail(lst);
  }
  // Structured output and tools: the vocabulary for the grammar engine, and the formats the
  // model writes tool calls and reasoning in.
  {
    const Clock::time_point g0 = Clock::now();
    auto g = structured::GrammarVocabulary::Create(
        *tok, static_cast<int32_t>(model->config().vocab_size), eo.eos_token_ids);
    if (g.ok()) {
      grammar = std::move(*g);
      info.grammar = grammar.get();
      KINFER_LOG_INFO("structured output: vocabulary ready in {:.2f} s",
                      Seconds(Clock::now() - g0));
    } else {
      KINFER_LOG_WARN("structured output is off for this model: {}", g.status().message());
    }
  }
  if (options.tool_call_parser == "auto") {
    info.tool_format = structured::DetectToolFormat(template_source);
  } else if (options.tool_call_parser != "none") {
    info.tool_format = structured::ToolFormatFromName(options.tool_call_parser);
  }
  if (options.reasoning_parser == "auto") {
    info.reasoning_format = structured::DetectReasoningFormat(template_source);
  } else if (options.reasoning_parser != "none") {
    info.reasoning_format = structured::ReasoningFormatFromName(options.reasoning_parser);
  }
  KINFER_LOG_INFO("tool calls: {}; reasoning: {}",
                  info.tool_format ? structured::ToolFormatName(*info.tool_format)
                                   : std::string_view("no format (tool_choice auto refused)"),
                  info.reasoning_format ? structured::ReasoningFormatName(*info.reasoning_format)
                                        : std::string_view("not split"));
  auto e = engine::Engine::Create(*model, eo);
  if (!e.ok()) return fail(e.status());
  info.max_model_len = (*e)->max_model_len();
  info.vocab_size = static_cast<int32_t>(model->config().vocab_size);
  info.tokenizer = tok.get();
  req_prompt_tokens =
      &registry.Histogram("request_prompt_tokens", "Number of prefill tokens processed.",
                          TokenBuckets(info.max_model_len));
  req_gen_tokens =
      &registry.Histogram("request_generation_tokens", "Number of generation tokens processed.",
                          TokenBuckets(info.max_model_len));
  cache_config->Set({{"block_size", std::to_string((*e)->block_size())},
                     {"num_gpu_blocks", std::to_string((*e)->Stats().num_blocks)},
                     {"cache_dtype", std::string(DTypeName(eo.kv_cache_dtype))}},
                    1);
  engine = std::move(*e);
  if (model->pooling() || !options.pooler_config.empty()) {
    Result<model::PoolingConfig> pooling = model->pooling().value_or(model::PoolingConfig{});
    if (!options.pooler_config.empty()) {
      pooling = model::ApplyPoolerConfigJson(options.pooler_config, *pooling);
    }
    if (!pooling.ok()) return fail(pooling.status());
    SetupEmbeddings(EmbeddingModel{*pooling, model->config().hidden_size});
    KINFER_LOG_INFO("embedding model ({}): {} pooling{}, {} dimensions{}", pooling->source,
                    model::PoolingTypeName(pooling->type), pooling->normalize ? ", normalized" : "",
                    model->config().hidden_size, pooling->matryoshka ? " (matryoshka)" : "");
  }
  state = State::kReady;
  KINFER_LOG_INFO("ready in {:.1f} s: serving '{}' (max model length {})",
                  Seconds(Clock::now() - t0), info.served_names[0], info.max_model_len);
}

void Server::Impl::SetupEmbeddings(EmbeddingModel model) {
  EmbeddingsRoute::Hooks h;
  h.reply = [this](HttpExchange& ex, int status, const std::string& body,
                   const std::string& request_id) { Reply(ex, status, body, request_id); };
  h.reply_error = [this](HttpExchange& ex, const ApiError& e, const std::string& request_id) {
    ReplyError(ex, e, request_id);
  };
  h.admit = [this](int inputs) -> std::optional<ApiError> {
    if (options.max_queue_len > 0 && queued.load() >= options.max_queue_len) {
      return ApiError{429,
                      fmt::format("the server is overloaded: {} requests are already waiting "
                                  "(--max-queue-len); retry later",
                                  queued.load()),
                      "rate_limit_error", "", "queue_full"};
    }
    inflight++;
    queued += inputs;
    return std::nullopt;
  };
  h.input_done = [this](const engine::RequestOutput& out) {
    queued--;
    if (out.embedding.empty()) return;
    const Labels labels = ModelLabels();
    request_success->Add({labels[0], {"finished_reason", "stop"}});
    if (out.first_scheduled)
      queue_time->Observe(labels, Seconds(*out.first_scheduled - out.arrival));
    e2e->Observe(labels, Seconds(Clock::now() - out.arrival));
    req_prompt_tokens->Observe(labels, out.usage.prompt_tokens);
  };
  embeddings = std::make_unique<EmbeddingsRoute>(*engine, info, std::move(model), std::move(h));
}

void Server::Impl::HandleEmbeddings(const std::shared_ptr<HttpExchange>& ex,
                                    const std::string& request_id, Clock::time_point start) {
  if (!embeddings) {
    ApiError e = BadRequest(
        fmt::format("model '{}' is not an embedding model: /v1/embeddings needs a model with a "
                    "pooling config (a sentence-transformers directory, a GGUF with a pooling "
                    "type) or `kinfer serve --pooler-config '{{\"pooling_type\": \"LAST\"}}'`",
                    info.served_names[0]),
        "model", "model_not_embedding");
    return ReplyError(*ex, e, request_id);
  }
  embeddings->Handle(ex, request_id, UnixNow(),
                     [this, ex, request_id, start](int status, int64_t tokens) {
                       inflight--;
                       cv.notify_all();
                       if (!options.access_log) return;
                       Json line;
                       line["request_id"] = request_id;
                       line["method"] = ex->method();
                       line["path"] = ex->path();
                       line["status"] = status;
                       line["latency_ms"] = Seconds(Clock::now() - start) * 1000;
                       line["prompt_tokens"] = tokens;
                       line["remote"] = ex->remote();
                       AccessLog(line);
                     });
}

Json Server::Impl::ModelCards() const {
  Json data = Json::array();
  for (const std::string& name : info.served_names) data.push_back(ModelCard(name));
  if (loras) {
    // As vLLM lists them: the adapter's name, its path as root, the base as parent.
    for (const engine::LoraRegistry::Entry& a : loras->List()) {
      data.push_back({{"id", a.name},
                      {"object", "model"},
                      {"created", created},
                      {"owned_by", "kinfer"},
                      {"root", a.path},
                      {"parent", info.served_names[0]},
                      {"max_model_len", info.max_model_len}});
    }
  }
  return data;
}

Json Server::Impl::ModelCard(const std::string& name) const {
  return {
      {"id", name},           {"object", "model"},          {"created", created},
      {"owned_by", "kinfer"}, {"root", options.model_path}, {"max_model_len", info.max_model_len}};
}

void Server::Impl::Reply(HttpExchange& ex, int status, const std::string& body,
                         const std::string& request_id, const std::string& content_type,
                         Headers headers) {
  headers.emplace_back("X-Request-Id", request_id);
  ex.Respond(status, content_type, body, headers);
  if (http_requests) http_requests->Add({ModelLabels()[0], {"status", std::to_string(status)}});
}

void Server::Impl::ReplyError(HttpExchange& ex, const ApiError& e, const std::string& request_id,
                              Headers headers) {
  Reply(ex, e.status, ErrorBodyForPath(ex.path(), e, request_id), request_id, "application/json",
        std::move(headers));
  if (options.access_log && e.status >= 400) {
    Json line;
    line["request_id"] = request_id;
    line["method"] = ex.method();
    line["path"] = ex.path();
    line["status"] = e.status;
    line["error"] = e.message;
    line["remote"] = ex.remote();
    AccessLog(line);
  }
}

void Server::Impl::Handle(const std::shared_ptr<HttpExchange>& ex, bool metrics_listener) {
  const Clock::time_point start = Clock::now();
  const std::string request_id = RequestId(*ex);
  const std::string& path = ex->path();
  const std::string& method = ex->method();
  if (draining) ex->CloseAfterResponse();

  struct Route {
    const char* path;
    const char* method;
    bool api;  // needs the model and (when keys are set) an API key
  };
  static const Route kRoutes[] = {
      {"/health", "GET", false},
      {"/ready", "GET", false},
      {"/metrics", "GET", false},
      {"/version", "GET", false},
      {"/", "GET", false},             // the playground page (when on)
      {"/playground/", "GET", false},  // its script and style
      {"/v1/models", "GET", true},
      {"/v1/completions", "POST", true},
      {"/v1/chat/completions", "POST", true},
      {"/v1/embeddings", "POST", true},
      {"/v1/models/", "GET", true},  // /v1/models/{id}: matched as a prefix
      {"/v1/responses", "POST", true},
      {"/v1/messages", "POST", true},
      {"/v1/messages/count_tokens", "POST", true},
      {"/tokenize", "POST", true},
      {"/detokenize", "POST", true},
      {"/v1/load_lora_adapter", "POST", true},
      {"/v1/unload_lora_adapter", "POST", true},
  };
  const Route* route = nullptr;
  for (const Route& r : kRoutes) {
    const std::string_view rp = r.path;
    if (path == rp || (rp.back() == '/' && rp.size() > 1 && path.size() > rp.size() &&
                       path.compare(0, rp.size(), rp) == 0)) {
      route = &r;
    }
  }
  if (metrics_listener && path != "/metrics" && path != "/health" && path != "/ready")
    route = nullptr;
  const StaticAsset* asset = nullptr;
  if (route &&
      (route->path == std::string_view("/") || route->path == std::string_view("/playground/"))) {
    asset = options.playground ? FindPlaygroundAsset(path) : nullptr;
    if (!asset) route = nullptr;
  }
  if (!route) {
    ApiError e;
    e.status = 404;
    e.type = "not_found_error";
    e.message = fmt::format("no route for {} {}", method, path);
    return ReplyError(*ex, e, request_id);
  }
  const bool head = method == "HEAD" && std::string(route->method) == "GET";
  if (method != route->method && !head) {
    ApiError e;
    e.status = 405;
    e.type = "invalid_request_error";
    e.message = fmt::format("{} does not allow {}; use {}", path, method, route->method);
    return ReplyError(*ex, e, request_id, {{"Allow", route->method}});
  }
  const bool needs_key = route->api || asset || (path == "/metrics" && options.protect_metrics);
  if (needs_key && keys.enabled()) {
    std::string presented =
        ApiKeys::FromHeaders(ex->header("authorization"), ex->header("x-api-key"));
    if (presented.empty() || !keys.Check(presented)) {
      ApiError e;
      e.status = 401;
      e.type = "authentication_error";
      e.code = "invalid_api_key";
      e.message = presented.empty() ? "You didn't provide an API key. Pass it as 'Authorization: "
                                      "Bearer <key>' or 'x-api-key: <key>'."
                                    : "Incorrect API key provided.";
      // The page asks the browser for the key (Basic: any user name, the key as password).
      return ReplyError(
          *ex, e, request_id,
          {{"WWW-Authenticate", asset ? "Basic realm=\"kinfer\", charset=\"UTF-8\"" : "Bearer"}});
    }
  }
  if (asset) {
    Headers h = PlaygroundHeaders();
    return Reply(*ex, 200, PlaygroundBody(*asset, keys.enabled()), request_id,
                 std::string(asset->content_type), std::move(h));
  }

  if (path == "/health") {
    const bool alive = state != State::kFailed && (!engine || engine->Stats().alive);
    return Reply(*ex, alive ? 200 : 503,
                 alive ? R"({"status":"ok"})" : R"({"status":"engine dead"})", request_id);
  }
  if (path == "/ready") {
    if (draining) return Reply(*ex, 503, R"({"status":"draining"})", request_id);
    if (state == State::kLoading) {
      Json body{{"status", "loading"}};
      std::lock_guard<std::mutex> lk(load_mu);
      if (!load_stage.empty()) {
        body["stage"] = load_stage;
        body["progress"] = std::round(load_fraction * 1000) / 1000;
      }
      return Reply(*ex, 503, body.dump(), request_id);
    }
    if (state == State::kFailed || !engine->Stats().alive) {
      return Reply(*ex, 503, R"({"status":"failed"})", request_id);
    }
    return Reply(*ex, 200, R"({"status":"ready"})", request_id);
  }
  if (path == "/metrics") {
    return Reply(*ex, 200, registry.Render(prefixes), request_id,
                 "text/plain; version=0.0.4; charset=utf-8");
  }
  if (path == "/version") {
    return Reply(*ex, 200, Json{{"version", KINFER_VERSION}}.dump(), request_id);
  }

  // Everything below needs the model.
  if (refusing) {
    ApiError e{503, "the server is shutting down", "service_unavailable", "", ""};
    return ReplyError(*ex, e, request_id, {{"Connection", "close"}});
  }
  if (state != State::kReady) {
    ApiError e{503,
               state == State::kLoading ? "the model is still loading"
                                        : "the model failed to load: " + load_error,
               "service_unavailable", "", ""};
    return ReplyError(*ex, e, request_id, {{"Retry-After", "5"}});
  }
  if (path == "/v1/models") {
    return Reply(*ex, 200, Json{{"object", "list"}, {"data", ModelCards()}}.dump(), request_id);
  }
  if (route->path == std::string_view("/v1/models/")) {
    // The id may hold slashes ("Qwen/Qwen3-0.6B"), sent as they are or percent-encoded.
    const std::string id = PercentDecode(path.substr(std::strlen("/v1/models/")));
    for (const Json& card : ModelCards()) {
      if (card["id"] == id) {
        return Reply(*ex, 200, card.dump(-1, ' ', false, Json::error_handler_t::replace),
                     request_id);
      }
    }
    ApiError e{404, fmt::format("The model `{}` does not exist.", id), "not_found_error", "model",
               "model_not_found"};
    return ReplyError(*ex, e, request_id);
  }
  if (path == "/v1/embeddings") return HandleEmbeddings(ex, request_id, start);
  if (embeddings && (path == "/v1/completions" || path == "/v1/chat/completions" ||
                     path == "/v1/responses" || path == "/v1/messages")) {
    ApiError e = BadRequest(fmt::format("model '{}' is an embedding model: it serves "
                                        "/v1/embeddings, not {}",
                                        info.served_names[0], path),
                            "model", "model_not_generative");
    return ReplyError(*ex, e, request_id);
  }
  if (path == "/v1/load_lora_adapter" || path == "/v1/unload_lora_adapter") {
    return HandleLoraUpdate(*ex, path == "/v1/load_lora_adapter", request_id);
  }
  if (path == "/tokenize") return HandleTokenize(*ex, request_id);
  if (path == "/detokenize") return HandleDetokenize(*ex, request_id);
  if (path == "/v1/messages/count_tokens") return HandleCountTokens(*ex, request_id);
  HandleGeneration(ex, path == "/v1/completions" ? Endpoint::kCompletions : Endpoint::kChat,
                   request_id, start);
}

void Server::Impl::HandleTokenize(HttpExchange& ex, const std::string& request_id) {
  auto j = ParseJson(ex.body(), "request body", 64);
  if (!j.ok() || !j->is_object()) {
    return ReplyError(ex, BadRequest("the request body must be a JSON object", "", "invalid_json"),
                      request_id);
  }
  std::vector<int32_t> ids;
  if (j->contains("messages")) {
    auto text = RenderChat(ex.body(), info);
    if (!text.ok()) return ReplyError(ex, text.error(), request_id);
    bool add_special = false;
    if (auto a = j->find("add_special_tokens"); a != j->end() && a->is_boolean()) add_special = *a;
    ids = tok->Encode(*text, add_special, true);
  } else if (auto p = j->find("prompt"); p != j->end() && p->is_string()) {
    bool add_special = true;
    if (auto a = j->find("add_special_tokens"); a != j->end()) {
      if (!a->is_boolean()) {
        return ReplyError(
            ex, BadRequest("'add_special_tokens' must be a boolean", "add_special_tokens"),
            request_id);
      }
      add_special = *a;
    }
    ids = tok->Encode(p->get<std::string>(), add_special, true);
  } else {
    return ReplyError(ex, BadRequest("'prompt' (a string) or 'messages' is required", "prompt"),
                      request_id);
  }
  Json out{{"count", ids.size()}, {"max_model_len", info.max_model_len}, {"tokens", ids}};
  if (auto r = j->find("return_token_strs"); r != j->end() && r->is_boolean() && *r) {
    Json strs = Json::array();
    for (int32_t id : ids) strs.push_back(std::string(tok->Piece(id)));
    out["token_strs"] = strs;
  }
  Reply(ex, 200, out.dump(-1, ' ', false, Json::error_handler_t::replace), request_id);
}

// Anthropic's /v1/messages/count_tokens: {"input_tokens": N} for the prompt a Messages request
// would send.
void Server::Impl::HandleCountTokens(HttpExchange& ex, const std::string& request_id) {
  auto n = CountMessageTokens(ex.body(), info);
  if (!n.ok()) return ReplyError(ex, n.error(), request_id);
  Reply(ex, 200, Json{{"input_tokens", *n}}.dump(), request_id);
}

void Server::Impl::HandleDetokenize(HttpExchange& ex, const std::string& request_id) {
  auto j = ParseJson(ex.body(), "request body", 64);
  if (!j.ok() || !j->is_object()) {
    return ReplyError(ex, BadRequest("the request body must be a JSON object", "", "invalid_json"),
                      request_id);
  }
  auto t = j->find("tokens");
  if (t == j->end() || !t->is_array()) {
    return ReplyError(ex, BadRequest("'tokens' must be an array of token ids", "tokens"),
                      request_id);
  }
  std::vector<int32_t> ids;
  for (const Json& v : *t) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= info.vocab_size) {
      return ReplyError(
          ex,
          BadRequest(fmt::format("'tokens' must hold token ids in [0, {})", info.vocab_size),
                     "tokens"),
          request_id);
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  Reply(ex, 200,
        Json{{"prompt", tok->Decode(ids, false)}}.dump(-1, ' ', false,
                                                       Json::error_handler_t::replace),
        request_id);
}

void Server::Impl::HandleGeneration(const std::shared_ptr<HttpExchange>& ex, Endpoint endpoint,
                                    const std::string& request_id, Clock::time_point start) {
  if (options.max_queue_len > 0 && queued.load() >= options.max_queue_len) {
    ApiError e{429,
               fmt::format("the server is overloaded: {} requests are already waiting "
                           "(--max-queue-len); retry later",
                           queued.load()),
               "rate_limit_error", "", "queue_full"};
    return ReplyError(*ex, e, request_id, {{"Retry-After", "1"}});
  }
  // The Responses and Messages APIs are translations onto the chat request (front_door.h).
  FrontDoorRequest door;
  if (IsFrontDoorPath(ex->path())) {
    auto parsed = ParseFrontDoorRequest(ex->path(), ex->body(), info, request_id, UnixNow());
    if (!parsed.ok()) return ReplyError(*ex, parsed.error(), request_id);
    door = std::move(*parsed);
  } else {
    auto parsed = ParseGenerationRequest(endpoint, ex->body(), info);
    if (!parsed.ok()) return ReplyError(*ex, parsed.error(), request_id);
    door.req = std::move(*parsed);
  }
  // A `model` that is not the base names an adapter: hold it for the request's whole life.
  std::shared_ptr<const model::LoraAdapter> lora;
  if (loras && !IsServedName(door.req.model)) {
    auto a = loras->Get(door.req.model);
    if (!a.ok()) {
      ApiError e;
      if (a.status().code() == StatusCode::kNotFound) {
        e = ApiError{404, fmt::format("The model `{}` does not exist.", door.req.model),
                     "not_found_error", "model", "model_not_found"};
      } else {
        e = ApiError{500, a.status().message(), "internal_server_error", "", ""};
      }
      return ReplyError(*ex, e, request_id);
    }
    lora = std::move(*a);
  }

  auto ctx = std::make_shared<RequestContext>();
  ctx->srv = this;
  ctx->ex = ex;
  ctx->req = std::move(door.req);
  ctx->writer = std::move(door.writer);
  ctx->request_id = request_id;
  ctx->id = (endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + request_id;
  ctx->created = UnixNow();
  ctx->start = start;
  const size_t prompts = ctx->req.prompts.size();
  ctx->choices.resize(prompts * static_cast<size_t>(ctx->req.params.n));
  ctx->prompt_logprobs.resize(prompts);
  ctx->last_output.resize(prompts);
  ctx->started.assign(prompts, false);
  ctx->remaining = static_cast<int>(prompts);

  if (ctx->req.stream) {
    ex->StartStream(200, "text/event-stream", {{"X-Request-Id", request_id}});
    if (ctx->writer) ex->Send(ctx->writer->StreamStart());
  }
  inflight++;
  queued += static_cast<int>(prompts);
  std::weak_ptr<RequestContext> weak = ctx;
  ex->OnClose([this, weak] {
    auto c = weak.lock();
    if (!c) return;
    {
      std::lock_guard<std::mutex> lk(c->mu);
      c->client_gone = true;
    }
    for (size_t i = 0; i < c->req.prompts.size(); ++i) engine->Abort(c->EngineId(i));
  });
  for (size_t i = 0; i < prompts; ++i) {
    engine::Request r;
    r.id = ctx->EngineId(i);
    r.prompt_tokens = ctx->req.prompts[i];
    r.params = ctx->req.params;
    r.priority = ctx->req.priority;
    r.cache_salt = ctx->req.cache_salt;
    r.lora = lora;
    if (lora) r.lora_name = ctx->req.model;
    Status st = engine->Submit(
        std::move(r), [ctx, i](engine::RequestOutput out) { ctx->OnOutput(i, std::move(out)); });
    if (!st.ok()) {
      // Earlier prompts of this request were accepted: abort them, and answer once they end.
      for (size_t k = 0; k < i; ++k) engine->Abort(ctx->EngineId(k));
      std::lock_guard<std::mutex> lk(ctx->mu);
      ctx->error = st;
      queued -= static_cast<int>(prompts - i);
      ctx->remaining -= static_cast<int>(prompts - i);
      for (size_t k = i; k < prompts; ++k) ctx->started[k] = true;
      if (ctx->remaining == 0) {
        if (!ctx->req.stream) {
          // Nothing was sent yet: a plain error response.
          ctx->done = true;
          inflight--;
          ApiError e =
              st.code() == StatusCode::kInvalidArgument
                  ? BadRequest(st.message(), endpoint == Endpoint::kChat ? "messages" : "prompt")
                  : ApiError{503, st.message(), "service_unavailable", "", ""};
          ReplyError(*ex, e, request_id);
          ctx->ex.reset();
          cv.notify_all();
        } else {
          ctx->Finish();
        }
      }
      return;
    }
  }
}

Status Server::Impl::LoadLoraModules() {
  loras = std::make_unique<engine::LoraRegistry>(*model, options.lora);
  for (const auto& [name, path] : options.lora_modules) {
    if (IsServedName(name)) {
      return InvalidArgumentError("--lora-modules {}: the name is already the base model's", name);
    }
    KINFER_RETURN_IF_ERROR(loras->Add(name, path).WithPrefix("--lora-modules " + name));
  }
  engine::LoraRegistry* reg = loras.get();
  info.has_adapter = [reg](const std::string& name) { return reg->Has(name); };
  KINFER_LOG_INFO("LoRA: {} adapter(s); --max-loras {}, --max-lora-rank {}, --max-cpu-loras {}{}",
                  options.lora_modules.size(), options.engine.scheduler.max_loras,
                  options.lora.max_rank, options.lora.max_cpu_loras,
                  options.allow_runtime_lora_updating ? "; runtime loading allowed" : "");
  return Status::Ok();
}

// vLLM's /v1/load_lora_adapter {"lora_name", "lora_path", "load_inplace"} and
// /v1/unload_lora_adapter {"lora_name"}: 200 with a plain-text "Success: ..." line.
void Server::Impl::HandleLoraUpdate(HttpExchange& ex, bool load, const std::string& request_id) {
  if (!options.allow_runtime_lora_updating || !loras) {
    ApiError e{404,
               "loading and unloading LoRA adapters at run time is off; start the server with "
               "--allow-runtime-lora-updating (or VLLM_ALLOW_RUNTIME_LORA_UPDATING=true)",
               "not_found_error", "", ""};
    return ReplyError(ex, e, request_id);
  }
  auto j = ParseJson(ex.body(), "request body", 16);
  if (!j.ok() || !j->is_object()) {
    return ReplyError(ex, BadRequest("the request body must be a JSON object", "", "invalid_json"),
                      request_id);
  }
  auto field = [&](const char* key) -> std::string {
    auto it = j->find(key);
    return it != j->end() && it->is_string() ? it->get<std::string>() : "";
  };
  const std::string name = field("lora_name"), path = field("lora_path");
  if (load) {
    if (name.empty() || path.empty()) {
      return ReplyError(ex,
                        BadRequest("Both 'lora_name' and 'lora_path' must be provided.",
                                   name.empty() ? "lora_name" : "lora_path"),
                        request_id);
    }
    bool inplace = false;
    if (auto it = j->find("load_inplace"); it != j->end()) {
      if (!it->is_boolean()) {
        return ReplyError(ex, BadRequest("'load_inplace' must be a boolean", "load_inplace"),
                          request_id);
      }
      inplace = *it;
    }
    if (IsServedName(name)) {
      return ReplyError(ex,
                        BadRequest(fmt::format("'{}' is the base model's name", name), "lora_name"),
                        request_id);
    }
    Status st = loras->Add(name, path, inplace);
    if (!st.ok()) {
      return ReplyError(
          ex,
          BadRequest(st.message(),
                     st.code() == StatusCode::kAlreadyExists ? "lora_name" : "lora_path"),
          request_id);
    }
    KINFER_LOG_INFO("LoRA adapter '{}' loaded from {} at run time", name, path);
    return Reply(ex, 200, fmt::format("Success: LoRA adapter '{}' added successfully.", name),
                 request_id, "text/plain; charset=utf-8");
  }
  if (name.empty()) {
    return ReplyError(ex, BadRequest("'lora_name' needs to be provided.", "lora_name"), request_id);
  }
  Status st = loras->Remove(name);
  if (!st.ok()) {
    return ReplyError(ex, ApiError{404, st.message(), "not_found_error", "lora_name", ""},
                      request_id);
  }
  KINFER_LOG_INFO("LoRA adapter '{}' unloaded", name);
  Reply(ex, 200, fmt::format("Success: LoRA adapter '{}' removed successfully.", name), request_id,
        "text/plain; charset=utf-8");
}

Server::Server(ServerOptions options) : impl_(new Impl) { impl_->options = std::move(options); }

Server::~Server() {
  if (impl_->loader.joinable()) impl_->loader.join();
  if (impl_->http) impl_->http->Stop();
  if (impl_->metrics_http) impl_->metrics_http->Stop();
  if (impl_->engine) impl_->engine->Shutdown();
}

Status Server::Start() {
  Impl& m = *impl_;
  KINFER_ASSIGN_OR_RETURN(m.keys, ApiKeys::Load(m.options.api_keys, m.options.api_key_files));
  m.info.served_names = m.options.served_model_names;
  if (m.info.served_names.empty()) m.info.served_names.push_back(m.options.model_path);
  if (!m.options.chat_template_file.empty() &&
      !std::filesystem::exists(m.options.chat_template_file)) {
    return NotFoundError("--chat-template {}: no such file", m.options.chat_template_file);
  }
  if (!m.options.pooler_config.empty()) {
    KINFER_RETURN_IF_ERROR(
        model::ApplyPoolerConfigJson(m.options.pooler_config, model::PoolingConfig{}).status());
  }
  m.SetupMetrics();
  m.http = std::make_unique<HttpServer>(
      m.options.http, [&m](const std::shared_ptr<HttpExchange>& ex) { m.Handle(ex, false); });
  KINFER_RETURN_IF_ERROR(m.http->Start());
  if (m.options.metrics_port > 0) {
    HttpServerOptions mo = m.options.http;
    mo.port = m.options.metrics_port;
    mo.tls_cert_file.clear();
    mo.tls_key_file.clear();
    mo.io_threads = 1;
    m.metrics_http = std::make_unique<HttpServer>(
        mo, [&m](const std::shared_ptr<HttpExchange>& ex) { m.Handle(ex, true); });
    KINFER_RETURN_IF_ERROR(m.metrics_http->Start());
  }
  KINFER_LOG_INFO(
      "listening on {}://{}:{}{}", m.options.http.tls_cert_file.empty() ? "http" : "https",
      m.options.http.host, m.http->port(),
      m.options.metrics_port > 0 ? fmt::format(" (metrics on port {})", m.metrics_http->port())
                                 : "");
  if (m.keys.enabled()) KINFER_LOG_INFO("API keys required: {} configured", m.keys.size());
  m.loader = std::thread([&m] { m.Load(); });
  return Status::Ok();
}

int Server::port() const { return impl_->http ? impl_->http->port() : 0; }
int Server::metrics_port() const { return impl_->metrics_http ? impl_->metrics_http->port() : 0; }

int Server::Run() {
  Impl& m = *impl_;
  // Wait for a signal on a dedicated thread, or for a failed load.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  std::thread waiter([&m, set] {
    int sig = 0;
    sigwait(&set, &sig);
    KINFER_LOG_INFO("received {}: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    std::lock_guard<std::mutex> lk(m.mu);
    m.shutdown_requested = true;
    m.cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lk(m.mu);
    m.cv.wait(lk, [&] { return m.shutdown_requested; });
  }
  if (m.state == Impl::State::kFailed) {
    kill(getpid(), SIGTERM);  // wakes the waiter: the signal is blocked in every thread
    waiter.join();
    if (m.loader.joinable()) m.loader.join();
    m.http->Stop();
    return 1;
  }
  waiter.join();
  Shutdown();
  return 0;
}

void Server::Shutdown() {
  Impl& m = *impl_;
  const Clock::time_point signal_time = Clock::now();
  m.draining = true;
  const auto delay = std::chrono::duration<double>(m.options.drain_delay_seconds);
  std::this_thread::sleep_for(delay);
  m.refusing = true;
  KINFER_LOG_INFO("refusing new requests; waiting for {} in flight", m.inflight.load());
  const auto deadline =
      signal_time + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(m.options.shutdown_timeout_seconds));
  {
    std::unique_lock<std::mutex> lk(m.mu);
    m.cv.wait_until(lk, deadline, [&] { return m.inflight.load() == 0; });
  }
  if (m.inflight.load() > 0) {
    KINFER_LOG_WARN("shutdown timeout: aborting {} requests still in flight", m.inflight.load());
  }
  if (m.loader.joinable()) m.loader.join();
  if (m.engine) m.engine->Shutdown();  // aborts what is left; their streams end
  // Let the final writes go out before closing connections.
  for (int i = 0; i < 100 && m.inflight.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  m.http->Stop();
  if (m.metrics_http) m.metrics_http->Stop();
  KINFER_LOG_INFO("stopped");
}

}  // namespace kinfer::server
