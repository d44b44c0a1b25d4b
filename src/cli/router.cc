// `kinfer router`: the router in front of a model's replicas (see router/router.h).
#include <signal.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/log.h"
#include "core/units.h"
#include "router/router.h"

namespace kinfer::cli {

void AddRouterCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "router",
      "Route OpenAI requests to a model's replicas (prefix- and load-aware, with failover)");
  auto o = std::make_shared<router::RouterOptions>();
  auto policy = std::make_shared<std::string>("prefix");
  auto backends = std::make_shared<std::vector<std::string>>();
  auto max_body = std::make_shared<std::string>("8MiB");
  auto log_format = std::make_shared<std::string>("text");
  auto no_access_log = std::make_shared<bool>(false);
  auto connect_timeout = std::make_shared<double>(2.0);
  auto metrics_max_age = std::make_shared<double>(1.0);
  o->http.port = 8080;
  o->http.io_threads = 2;

  cmd->add_option("--backends", *backends,
                  "Replica URLs, comma-separated or repeated: http://10.0.0.5:8000,...")
      ->delimiter(',');
  cmd->add_option("--endpointslices", o->endpointslices,
                  "Or the replicas of a Kubernetes Service, from its EndpointSlices (watched): "
                  "NAMESPACE/SERVICE[:PORT], PORT a name or number (default: the port named http)");
  cmd->add_option("--kubeconfig", o->kubeconfig,
                  "kubeconfig for --endpointslices (default: in-cluster, $KUBECONFIG, "
                  "~/.kube/config)");
  cmd->add_option("--scale-from-zero", o->scale_from_zero,
                  "NAMESPACE/NAME of the LLMService these replicas belong to: while requests are "
                  "held and no replica is ready, set its replicas from 0 to 1 (needs get and "
                  "patch on llmservices/scale)");
  cmd->add_option("--policy", *policy, "round_robin, least_request, session or prefix")
      ->capture_default_str();
  cmd->add_option("--model", o->model_path,
                  "The served model (GGUF, HF directory, .bin) or its tokenizer: the prefix "
                  "policy tokenizes prompts with it, as the replicas do");
  cmd->add_option("--chat-template", o->chat_template_file,
                  "Jinja chat template file, when the replicas run with --chat-template");
  cmd->add_option("--served-model-name", o->served_model_names,
                  "Names clients may use in 'model' (default: learned from the replicas)");
  cmd->add_option("--host", o->http.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->http.port, "Port to listen on")->capture_default_str();
  cmd->add_option("--io-threads", o->http.io_threads,
                  "I/O threads, shared by client and replica connections")
      ->capture_default_str();
  cmd->add_option("--metrics-port", o->metrics_port,
                  "Serve /metrics (and /health, /ready) on this port too (0: API port only)")
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_keys,
                  "Require 'Authorization: Bearer KEY' (repeatable; also $KINFER_API_KEY)");
  cmd->add_option("--api-key-file", o->api_key_files,
                  "File with one API key per line, e.g. a mounted Secret (repeatable)");
  cmd->add_flag("--protect-metrics", o->protect_metrics, "Require the API key on /metrics too");
  cmd->add_option("--backend-api-key", o->backend_api_key,
                  "Key sent to the replicas instead of the client's (also $KINFER_BACKEND_API_KEY)")
      ->envname("KINFER_BACKEND_API_KEY");
  cmd->add_option("--rate-limit-rpm", o->limits.requests_per_minute,
                  "Requests per minute per API key (per client address without keys; 0: none)")
      ->capture_default_str();
  cmd->add_option("--rate-limit-tpm", o->limits.tokens_per_minute,
                  "Prompt plus completion tokens per minute per API key (0: none)")
      ->capture_default_str();
  cmd->add_option("--session-header", o->session_header,
                  "Header whose value keys the session policy (else the 'user' field)")
      ->capture_default_str();
  cmd->add_option("--max-retries", o->retry.max_retries,
                  "Tries on other replicas while nothing has reached the client")
      ->capture_default_str();
  cmd->add_option("--request-timeout", o->request_timeout_seconds,
                  "Seconds a request may wait for its response head, retries included")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", *connect_timeout, "Seconds to connect to a replica")
      ->capture_default_str();
  cmd->add_option("--probe-interval", o->probe_interval_seconds,
                  "Seconds between /ready probes of each replica")
      ->capture_default_str();
  cmd->add_option("--scrape-interval", o->scrape_interval_seconds,
                  "Seconds between /metrics scrapes of each replica (load and KV usage)")
      ->capture_default_str();
  cmd->add_option("--metrics-max-age", *metrics_max_age,
                  "Scraped metrics older than this (seconds) count the replica as saturated")
      ->capture_default_str();
  cmd->add_option("--hold-timeout", o->hold_timeout_seconds,
                  "Seconds a request waits for a replica when none is ready (0: 503 at once)")
      ->capture_default_str();
  cmd->add_option("--hold-heartbeat", o->hold_heartbeat_seconds,
                  "Held streaming requests get an SSE comment every this many seconds (0: off)")
      ->capture_default_str();
  cmd->add_option("--max-held", o->max_held, "Requests held at most; more get 429")
      ->capture_default_str();
  cmd->add_option("--prefix-max-tokens", o->prefix_max_tokens,
                  "Leading prompt tokens the prefix policy hashes and matches")
      ->capture_default_str();
  cmd->add_option("--prefix-index-max-blocks", o->pool.index_max_blocks,
                  "Most blocks remembered per replica (about 80 bytes each)")
      ->capture_default_str();
  cmd->add_option("--prefix-weight", o->pool.picker.prefix_weight,
                  "prefix policy: weight of the matched fraction of the prompt")
      ->capture_default_str();
  cmd->add_option("--load-weight", o->pool.picker.load_weight,
                  "prefix policy: weight of the replica's load (relative to the busiest)")
      ->capture_default_str();
  cmd->add_option("--kv-weight", o->pool.picker.kv_weight,
                  "prefix policy: weight of the replica's KV cache usage")
      ->capture_default_str();
  cmd->add_option("--hot-factor", o->pool.picker.hot_factor,
                  "prefix policy: a replica loaded above this many times the mean loses its "
                  "prefix bonus")
      ->capture_default_str();
  cmd->add_option("--max-request-body-bytes", *max_body, "Larger request bodies get 413")
      ->capture_default_str();
  cmd->add_option("--drain-delay", o->drain_delay_seconds,
                  "Seconds after SIGTERM during which new requests are still served")
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout", o->shutdown_timeout_seconds,
                  "Seconds after SIGTERM for in-flight requests to finish")
      ->capture_default_str();
  cmd->add_option("--log-format", *log_format, "Log lines as text or JSON")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--no-access-log", *no_access_log, "No per-request JSON lines on stdout");

  cmd->callback([=] {
    if (*log_format == "json")
      InitLogging(spdlog::level::to_string_view(spdlog::get_level()).data(), LogFormat::kJson);
    router::RouterOptions opts = *o;
    auto fail = [](const std::string& msg) {
      fmt::print(stderr, "error: {}\n", msg);
      ExitCode() = 2;
    };
    auto p = router::ParsePolicy(*policy);
    if (!p.ok()) return fail(p.status().message());
    opts.pool.policy = *p;
    for (const std::string& b : *backends) {
      if (!b.empty()) opts.backends.push_back(b);
    }
    if (opts.backends.empty() == opts.endpointslices.empty()) {
      return fail("give the replicas as --backends URL,... or --endpointslices NAMESPACE/SERVICE");
    }
    auto mb = ParseBytes(*max_body);
    if (!mb || *mb <= 0)
      return fail("--max-request-body-bytes '" + *max_body + "': expected bytes");
    opts.http.max_body_bytes = static_cast<uint64_t>(*mb);
    if (opts.probe_interval_seconds <= 0 || opts.scrape_interval_seconds <= 0) {
      return fail("--probe-interval and --scrape-interval must be positive");
    }
    if (opts.request_timeout_seconds <= 0) return fail("--request-timeout must be positive");
    if (opts.retry.max_retries < 0) return fail("--max-retries must be 0 or more");
    opts.upstream.connect_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(*connect_timeout * 1000));
    opts.pool.metrics_max_age = std::chrono::duration_cast<router::Clock::duration>(
        std::chrono::duration<double>(*metrics_max_age));
    opts.access_log = !*no_access_log;

    BlockStopSignals();

    router::Router r(opts);
    ExitCode() = StartAndRun(r);
  });
}

}  // namespace kinfer::cli
