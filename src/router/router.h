// `kinfer router`: the OpenAI-compatible entry point in front of a model's replicas. It checks
// API keys and per-key rate limits, answers malformed requests itself, picks a replica per
// request (prefix- and load-aware by default, see picker.h), proxies the request and streams
// the answer back as it arrives, retries on another replica while nothing has reached the
// client, ejects failing replicas, holds requests while no replica is ready, and exports its
// own /metrics. Replicas come from a static list or from a discovery source (EndpointSlices)
// through SetEndpoints.
//
//   Router router(options);
//   KINFER_RETURN_IF_ERROR(router.Start());
//   return router.Run();  // until SIGTERM or SIGINT, then drains
//
// Threads: the HTTP server's I/O threads run every request and every upstream connection; one
// maintenance thread ("kinfer-probe") probes /ready, scrapes /metrics and expires held requests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "router/backend_pool.h"
#include "router/rate_limiter.h"
#include "router/retry.h"
#include "router/upstream.h"
#include "server/http_server.h"

namespace kinfer::router {

struct RouterOptions {
  server::HttpServerOptions http;     // host, port, I/O threads, body cap (413 above)
  int metrics_port = 0;               // 0: /metrics on the main port only
  std::vector<std::string> backends;  // static replica URLs
  // Or a Kubernetes Service's EndpointSlices: "NAMESPACE/SERVICE[:PORT]", with credentials from
  // `kubeconfig` (a path, or "" for in-cluster and the usual lookup).
  std::string endpointslices;
  std::string kubeconfig;
  // Scale from zero: "NAMESPACE/NAME" of the LLMService whose replicas these are. While requests
  // are held and no replica is routable, the router sets its /scale from 0 to 1 (a JSON Patch
  // that tests for 0: routers racing do no harm). Credentials as for `endpointslices`.
  std::string scale_from_zero;
  PoolOptions pool;
  // The served model's tokenizer and chat template, for the prefix policy's exact hashes
  // (empty: hash the prompt's bytes instead).
  std::string model_path;
  std::string chat_template_file;
  // Names clients may put in "model" (empty: learned from the replicas' /v1/models).
  std::vector<std::string> served_model_names;
  std::vector<std::string> api_keys;
  std::vector<std::string> api_key_files;
  bool protect_metrics = false;
  // When set, replaces the client's credentials on requests to the replicas (and is sent with
  // probes and scrapes): tenants' keys stay at the router, replicas trust only the router's.
  std::string backend_api_key;
  RateLimits limits;  // per API key (per client address when no keys are configured)
  std::string session_header = "x-session-id";  // session policy key; else the "user" field
  RetryPolicy retry;
  UpstreamOptions upstream;
  double request_timeout_seconds = 600;  // until the response head
  double probe_interval_seconds = 0.5;
  double scrape_interval_seconds = 0.2;
  double hold_timeout_seconds = 30;  // with no ready replica, how long a request waits
  int max_held = 1024;               // held requests beyond this get 429
  // A held streaming request gets its 200 and an SSE comment (": waiting for a replica") after
  // this many seconds, then one every as many, so that clients and proxies with idle timeouts
  // keep the connection; once the head went out, a hold timeout is an SSE error event (0: off).
  double hold_heartbeat_seconds = 5;
  size_t prefix_max_tokens = 4096;  // prompt tokens the prefix index looks at
  double drain_delay_seconds = 5;
  double shutdown_timeout_seconds = 30;
  bool access_log = true;
};

class Router {
 public:
  explicit Router(RouterOptions options);
  ~Router();

  // Loads the tokenizer (if any), starts listening, probing and scraping.
  Status Start();
  // Blocks until SIGTERM or SIGINT (blocked in every thread by the caller), then drains:
  // unready at once, new requests refused after the drain delay, in-flight ones finish until
  // the shutdown timeout. Returns the exit code.
  int Run();
  void Shutdown();

  // The replicas now (discovery). Static backends and EndpointSlices are set up by Start; this
  // is for other sources.
  void SetEndpoints(const std::vector<DiscoveredEndpoint>& endpoints);

  int port() const;
  int metrics_port() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kinfer::router
