// The router's internals, shared by router.cc (the front door: routes, keys, limits, held
// requests, probes and scrapes) and proxy_call.cc (one request's attempts on the replicas).
// Nothing outside those two files includes this.
#pragma once

#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "k8s/client.h"
#include "k8s/scale.h"
#include "router/endpoint_slice_discovery.h"
#include "router/router.h"
#include "server/api_error.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace kinfer::router {

using server::ApiError;
using server::HttpExchange;
using server::MetricFamily;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct ProxyCall;

// Errors the router answers itself, shaped as the route's API does: Anthropic's
// {"type":"error","error":{...},"request_id"} under /v1/messages, OpenAI's elsewhere.
std::string ErrorBody(const std::string& path, const ApiError& e, const std::string& request_id);
// The same error as the SSE event that ends a stream on that route.
std::string ErrorEvent(const std::string& path, const ApiError& e, const std::string& request_id);

struct Router::Impl : std::enable_shared_from_this<Router::Impl> {
  RouterOptions options;
  std::unique_ptr<server::HttpServer> http, metrics_http;
  std::unique_ptr<UpstreamClient> client;
  std::unique_ptr<BackendPool> pool;
  std::unique_ptr<PromptModel> model;
  std::unique_ptr<EndpointSliceDiscovery> discovery;
  // Scale from zero (--scale-from-zero): its own client; `unzero` reads pool and held_count from
  // its thread, so ~Router resets it before anything else.
  std::unique_ptr<k8s::Client> scale_client;
  std::unique_ptr<k8s::ScaleFromZero> unzero;
  server::ApiKeys keys;
  std::unique_ptr<RateLimiter> limiter;
  Clock::duration request_timeout{};

  std::atomic<bool> draining{false};  // /ready answers 503
  std::atomic<bool> refusing{false};  // new requests get 503
  std::atomic<bool> discovery_ready{true};
  std::atomic<int> inflight{0};  // client requests not yet answered (held ones too)
  std::atomic<int> held_count{0};

  std::mutex names_mu;
  // What "model" may say: --served-model-name, and what the replicas' /v1/models lists (their
  // names and LoRA adapters, refreshed). Both empty: not known yet, the replica decides.
  std::vector<std::string> flag_names, learned_names;
  std::vector<std::string> adapters;  // of the learned names, the LoRA adapters ("parent" set)

  std::mutex held_mu;
  std::list<std::shared_ptr<ProxyCall>> held;

  std::mutex mu;  // shutdown and the maintenance thread
  std::condition_variable cv;
  bool stop = false;
  bool shutdown_requested = false;
  std::thread maintenance;
  std::mutex log_mu;

  server::MetricsRegistry registry;
  std::mutex render_mu;
  MetricFamily* requests = nullptr;
  MetricFamily* retries = nullptr;
  MetricFamily* pick_seconds = nullptr;
  MetricFamily* overhead_seconds = nullptr;
  MetricFamily* ttfb_seconds = nullptr;
  MetricFamily* prefix_match = nullptr;
  MetricFamily* ejections = nullptr;
  MetricFamily* rate_limited = nullptr;
  MetricFamily* backend_inflight = nullptr;
  MetricFamily* backend_routable = nullptr;
  MetricFamily* backend_ejected = nullptr;
  MetricFamily* backend_metrics_age = nullptr;
  MetricFamily* backend_waiting = nullptr;
  MetricFamily* backend_kv = nullptr;
  MetricFamily* index_blocks = nullptr;
  MetricFamily* index_bytes = nullptr;
  MetricFamily* inflight_gauge = nullptr;
  MetricFamily* held_gauge = nullptr;
  MetricFamily* backends_gauge = nullptr;
  MetricFamily* discovery_lists = nullptr;
  MetricFamily* discovery_events = nullptr;
  MetricFamily* discovery_errors = nullptr;

  void SetupMetrics();
  std::string ModelLabel();
  void Handle(const std::shared_ptr<HttpExchange>& ex, bool metrics_listener);
  void ReplyError(HttpExchange& ex, const ApiError& e, const std::string& request_id,
                  HeaderList headers = {});
  void AccessLog(Json line);
  bool KnownModel(const std::string& name);
  void ServeModelsLocally(HttpExchange& ex, const std::string& request_id);
  void Hold(const std::shared_ptr<ProxyCall>& call);
  Status StartScaleFromZero();
  void ReleaseHeld();
  void ExpireHeld();
  void Maintain();
  void Probe(const std::shared_ptr<Backend>& b);
  void Scrape(const std::shared_ptr<Backend>& b);
  void LearnModelNames();
  void SetEndpoints(const std::vector<DiscoveredEndpoint>& endpoints);
  HeaderList BackendAuth() const;
};

// One client request on its way through the router: its attempts on replicas, and what has
// reached the client so far. Upstream handlers and the client's disconnect may run on
// different threads: `mu` guards the state.
struct ProxyCall : std::enable_shared_from_this<ProxyCall> {
  std::shared_ptr<Router::Impl> r;
  std::shared_ptr<HttpExchange> ex;
  std::shared_ptr<OutgoingRequest> req;
  RequestInfo info;
  std::optional<uint64_t> session;
  std::string tenant, key_id, request_id;
  Clock::time_point start, deadline, held_until{}, next_heartbeat{};

  std::mutex mu;
  std::vector<uint64_t> tried;
  std::vector<std::string> tried_names;
  int retries = 0;
  int attempts = 0;
  std::shared_ptr<Backend> backend;
  std::shared_ptr<UpstreamCall> call;
  bool client_gone = false;
  bool done = false;
  bool is_held = false;
  // The router started the client's stream itself (heartbeats while held): the replica's
  // answer goes on in it, and an error becomes an SSE error event.
  bool head_sent = false;
  // The current attempt.
  int status = 0;
  ResponseHead head;
  bool streaming = false;
  bool discard = false;  // a retryable answer (503, 429): read it to the end, then retry
  AttemptFailure failure = AttemptFailure::kNone;
  std::string buffered;  // a sized (non-stream) body, sent whole
  // What reached the client.
  bool sent = false;
  char last_two[2] = {'\n', '\n'};
  std::optional<Clock::time_point> first_byte;
  // Token accounting for the rate limiter.
  std::string sse_line;
  int64_t sse_events = 0;
  int64_t usage_total = -1;
  // For metrics and the access log.
  double pick_s = 0, overhead_s = 0;
  size_t prompt_blocks = 0, matched_blocks = 0;
  std::string last_error;

  void Dispatch();
  void OnHead(ResponseHead h);
  void OnBody(std::string_view bytes);
  void OnDone(const CallResult& result);
  void OnClientGone();
  void Retry(AttemptFailure why);
  void FailNoReplica();
  // Ends the exchange (if still ours) and records the request.
  void Finish(int final_status, const std::string& error);
  void ReplyError(const ApiError& e, HeaderList headers = {});
  // An SSE comment to a held streaming request (starting its stream if needed).
  void Heartbeat();
  void ScanSse(std::string_view bytes);
  int64_t TokensUsed() const;
};

}  // namespace kinfer::router
