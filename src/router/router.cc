#include "router/router.h"

#include <openssl/sha.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/json.h"
#include "core/log.h"
#include "k8s/config.h"
#include "router/router_internal.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/request_id.h"

namespace kinfer::router {
namespace {

using server::Labels;
using server::RequestId;
using server::UnixNow;

Clock::duration FromSeconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// A key as logs and metrics name it: the first 12 hex digits of its SHA-256, never the key.
std::string KeyId(std::string_view key) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d);
  std::string s;
  for (int i = 0; i < 6; ++i) s += fmt::format("{:02x}", d[i]);
  return s;
}

uint64_t HashString(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string RemoteAddress(const std::string& remote) {
  size_t colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

bool HopByHopRequestHeader(const std::string& name) {
  static const char* kDrop[] = {
      "connection",     "keep-alive",          "proxy-connection", "te",
      "trailer",        "transfer-encoding",   "upgrade",          "host",
      "content-length", "proxy-authorization", "expect",           "accept-encoding",
      "x-request-id",   "x-forwarded-for"};
  for (const char* h : kDrop) {
    if (name == h) return true;
  }
  return false;
}

// The routes the router proxies: the OpenAI API and the engine's extras.
bool Proxied(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

// Routes whose POST body is a JSON object the router reads (model, stream, prompt).
bool JsonBodyRoute(const std::string& path) {
  return path == "/v1/completions" || path == "/v1/chat/completions" || path == "/v1/embeddings" ||
         path == "/v1/responses" || path == "/v1/messages" || path == "/tokenize" ||
         path == "/detokenize";
}

}  // namespace

using Impl = Router::Impl;

void Impl::SetupMetrics() {
  requests = &registry.Counter("requests",
                               "Requests answered, by replica and status code "
                               "(code 'error' when the replica gave no answer).");
  retries = &registry.Counter("retries", "Requests retried on another replica, by reason.");
  const std::vector<double> fast = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                    0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                    0.1,     0.25,     0.5,     1.0};
  pick_seconds = &registry.Histogram("pick_seconds", "Time spent choosing replicas.", fast);
  overhead_seconds = &registry.Histogram(
      "added_latency_seconds",
      "Time from a request's arrival to its first attempt leaving for a replica (parsing, "
      "tokenizing, picking).",
      fast);
  ttfb_seconds = &registry.Histogram(
      "time_to_first_byte_seconds", "Time from a request's arrival to the first byte sent back.",
      {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300});
  prefix_match = &registry.Histogram(
      "prefix_match_ratio",
      "Fraction of a prompt's blocks found in the chosen replica's prefix index.",
      {0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0});
  ejections = &registry.Counter("ejections", "Replicas ejected after failures, by replica.");
  rate_limited =
      &registry.Counter("rate_limited", "Requests refused with 429 by the per-key limits.");
  backend_inflight =
      &registry.Gauge("backend_inflight", "Requests this router has in flight, per replica.");
  backend_routable =
      &registry.Gauge("backend_healthy",
                      "1 when the replica takes requests (ready, not ejected, not terminating).");
  backend_ejected = &registry.Gauge("backend_ejected", "1 while the replica is ejected.");
  backend_metrics_age = &registry.Gauge("backend_metrics_age_seconds",
                                        "Age of the replica's last scraped metrics (-1: never).");
  backend_waiting =
      &registry.Gauge("backend_requests_waiting", "The replica's num_requests_waiting, scraped.");
  backend_kv = &registry.Gauge("backend_kv_cache_usage", "The replica's KV cache usage, scraped.");
  index_blocks = &registry.Gauge("prefix_index_blocks", "Blocks in each replica's prefix index.");
  index_bytes =
      &registry.Gauge("prefix_index_bytes", "Approximate memory of the prefix indexes, in bytes.");
  inflight_gauge = &registry.Gauge(
      "inflight", "Client requests in the router (being served or held), per model.");
  held_gauge = &registry.Gauge("held", "Requests held while no replica is ready, per model.");
  backends_gauge = &registry.Gauge("backends", "Replicas known, by state (known, routable).");
  discovery_lists = &registry.Counter(
      "discovery_lists",
      "EndpointSlice lists, by reason (initial, gone: 410 after compaction, reconnect, periodic).");
  discovery_events = &registry.Counter("discovery_events", "EndpointSlice watch events applied.");
  discovery_errors =
      &registry.Counter("discovery_errors", "EndpointSlice lists and watches that failed.");
  registry.OnCollect([this] {
    std::vector<BackendView> views = pool->Views();
    for (MetricFamily* f :
         {backend_inflight, backend_routable, backend_ejected, backend_metrics_age, backend_waiting,
          backend_kv, index_blocks, inflight_gauge, held_gauge}) {
      f->Clear();
    }
    size_t blocks = 0;
    int routable = 0;
    for (const BackendView& v : views) {
      const Labels l = {{"backend", v.name}};
      backend_inflight->Set(l, v.inflight);
      backend_routable->Set(l, v.routable ? 1 : 0);
      backend_ejected->Set(l, v.ejected ? 1 : 0);
      backend_metrics_age->Set(l, v.metrics_age_seconds);
      backend_waiting->Set(l, v.waiting);
      backend_kv->Set(l, v.kv_usage);
      index_blocks->Set(l, static_cast<double>(v.index_blocks));
      blocks += v.index_blocks;
      routable += v.routable ? 1 : 0;
    }
    index_bytes->Set({}, static_cast<double>(blocks * PrefixIndex::kBytesPerEntry));
    const Labels m = {{"model", ModelLabel()}};
    inflight_gauge->Set(m, inflight.load());
    held_gauge->Set(m, held_count.load());
    backends_gauge->Set({{"state", "known"}}, static_cast<double>(views.size()));
    backends_gauge->Set({{"state", "routable"}}, routable);
    if (discovery) {
      const EndpointSliceDiscovery::Stats s = discovery->stats();
      const uint64_t relists = s.relists_gone + s.relists_reconnect + s.relists_periodic;
      discovery_lists->Set({{"reason", "initial"}}, static_cast<double>(s.lists - relists));
      discovery_lists->Set({{"reason", "gone"}}, static_cast<double>(s.relists_gone));
      discovery_lists->Set({{"reason", "reconnect"}}, static_cast<double>(s.relists_reconnect));
      discovery_lists->Set({{"reason", "periodic"}}, static_cast<double>(s.relists_periodic));
      discovery_events->Set({}, static_cast<double>(s.events));
      discovery_errors->Set({}, static_cast<double>(s.errors));
    }
  });
}

std::string Impl::ModelLabel() {
  std::lock_guard<std::mutex> lk(names_mu);
  if (!flag_names.empty()) return flag_names[0];
  for (const std::string& n : learned_names) {
    if (std::find(adapters.begin(), adapters.end(), n) == adapters.end()) return n;
  }
  return "";
}

bool Impl::KnownModel(const std::string& name) {
  std::lock_guard<std::mutex> lk(names_mu);
  if (flag_names.empty() && learned_names.empty()) return true;  // the replica decides
  return std::find(flag_names.begin(), flag_names.end(), name) != flag_names.end() ||
         std::find(learned_names.begin(), learned_names.end(), name) != learned_names.end();
}

void Impl::AccessLog(Json line) {
  line["time"] = UnixNow();
  std::string s = line.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::lock_guard<std::mutex> lk(log_mu);
  std::fprintf(stdout, "%s\n", s.c_str());
  std::fflush(stdout);
}

void Impl::ReplyError(HttpExchange& ex, const ApiError& e, const std::string& request_id,
                      HeaderList headers) {
  headers.emplace_back("X-Request-Id", request_id);
  ex.Respond(e.status, "application/json", ErrorBody(ex.path(), e, request_id), headers);
  requests->Add({{"backend", ""}, {"code", std::to_string(e.status)}});
  if (options.access_log) {
    Json line;
    line["request_id"] = request_id;
    line["method"] = ex.method();
    line["path"] = ex.path();
    line["status"] = e.status;
    line["error"] = e.message;
    line["remote"] = ex.remote();
    AccessLog(std::move(line));
  }
}

void Impl::ServeModelsLocally(HttpExchange& ex, const std::string& request_id) {
  Json data = Json::array();
  {
    std::lock_guard<std::mutex> lk(names_mu);
    std::vector<std::string> all = flag_names;
    for (const std::string& n : learned_names) {
      if (std::find(all.begin(), all.end(), n) == all.end()) all.push_back(n);
    }
    for (const std::string& n : all) {
      data.push_back({{"id", n}, {"object", "model"}, {"created", 0}, {"owned_by", "kinfer"}});
    }
  }
  ex.Respond(200, "application/json", Json{{"object", "list"}, {"data", data}}.dump(),
             {{"X-Request-Id", request_id}});
  requests->Add({{"backend", ""}, {"code", "200"}});
}

HeaderList Impl::BackendAuth() const {
  if (options.backend_api_key.empty()) return {};
  return {{"Authorization", "Bearer " + options.backend_api_key}};
}

void Impl::Handle(const std::shared_ptr<HttpExchange>& ex, bool metrics_listener) {
  const Clock::time_point start = Clock::now();
  const std::string request_id = RequestId(*ex);
  const std::string& path = ex->path();
  const std::string& method = ex->method();

  const bool own =
      path == "/health" || path == "/ready" || path == "/metrics" || path == "/version";
  if ((metrics_listener && path != "/metrics" && path != "/health" && path != "/ready") ||
      (!own && !Proxied(path))) {
    return ReplyError(
        *ex, {404, fmt::format("no route for {} {}", method, path), "not_found_error", "", ""},
        request_id);
  }
  if (own && method != "GET" && method != "HEAD") {
    return ReplyError(*ex,
                      {405, fmt::format("{} does not allow {}; use GET", path, method),
                       "invalid_request_error", "", ""},
                      request_id, {{"Allow", "GET"}});
  }
  const bool needs_key = !own || (path == "/metrics" && options.protect_metrics);
  std::string presented;
  if (needs_key && keys.enabled()) {
    presented = server::ApiKeys::FromHeaders(ex->header("authorization"), ex->header("x-api-key"));
    if (presented.empty() || !keys.Check(presented)) {
      ApiError e{401,
                 presented.empty()
                     ? "You didn't provide an API key. Pass it as 'Authorization: Bearer <key>' "
                       "or 'x-api-key: <key>'."
                     : "Incorrect API key provided.",
                 "authentication_error", "", "invalid_api_key"};
      return ReplyError(*ex, e, request_id, {{"WWW-Authenticate", "Bearer"}});
    }
  }
  if (path == "/health") {
    return ex->Respond(200, "application/json", R"({"status":"ok"})",
                       {{"X-Request-Id", request_id}});
  }
  if (path == "/ready") {
    const char* why = draining ? "draining" : !discovery_ready ? "discovering replicas" : nullptr;
    if (why) {
      return ex->Respond(503, "application/json", Json{{"status", why}}.dump(),
                         {{"X-Request-Id", request_id}});
    }
    return ex->Respond(200, "application/json", R"({"status":"ready"})",
                       {{"X-Request-Id", request_id}});
  }
  if (path == "/metrics") {
    std::string text;
    {
      std::lock_guard<std::mutex> lk(render_mu);
      text = registry.Render({"kinfer_router_"});
    }
    return ex->Respond(200, "text/plain; version=0.0.4; charset=utf-8", text);
  }
  if (path == "/version") {
    return ex->Respond(200, "application/json", Json{{"version", KINFER_VERSION}}.dump());
  }

  if (refusing) {
    return ReplyError(*ex, {503, "the router is shutting down", "service_unavailable", "", ""},
                      request_id, {{"Connection", "close"}, {"Retry-After", "1"}});
  }
  const std::string key_id = presented.empty() ? "" : KeyId(presented);
  const std::string tenant = key_id.empty() ? "ip:" + RemoteAddress(ex->remote()) : "key:" + key_id;

  // The body: the router answers what it can check itself, as the replica would.
  RequestInfo info;
  if (method == "POST" && JsonBodyRoute(path)) {
    RequestInfoOptions ro;
    ro.tokenize = options.pool.policy == Policy::kPrefix;
    ro.max_tokens = options.prefix_max_tokens;
    auto parsed = ReadRequestInfo(path, ex->body(), model.get(), ro);
    if (!parsed.ok()) return ReplyError(*ex, parsed.error(), request_id);
    info = std::move(*parsed);
    {
      std::lock_guard<std::mutex> lk(names_mu);
      if (std::find(adapters.begin(), adapters.end(), info.model) != adapters.end()) {
        info.adapter = info.model;
      }
    }
    if (!info.model.empty() && !KnownModel(info.model)) {
      return ReplyError(*ex,
                        {404, fmt::format("The model `{}` does not exist.", info.model),
                         "not_found_error", "model", "model_not_found"},
                        request_id);
    }
  }
  if (limiter) {
    auto d = limiter->Admit(tenant, info.prompt_tokens_estimate, start);
    if (!d.allowed) {
      rate_limited->Add({{"limit", d.limit}});
      HeaderList h = {{"Retry-After", std::to_string(d.retry_after_seconds)}};
      if (d.remaining_requests >= 0) {
        h.emplace_back("x-ratelimit-limit-requests",
                       std::to_string(limiter->limits().requests_per_minute));
        h.emplace_back("x-ratelimit-remaining-requests", std::to_string(d.remaining_requests));
      }
      if (d.remaining_tokens >= 0) {
        h.emplace_back("x-ratelimit-limit-tokens",
                       std::to_string(limiter->limits().tokens_per_minute));
        h.emplace_back("x-ratelimit-remaining-tokens",
                       std::to_string(std::max<int64_t>(0, d.remaining_tokens)));
      }
      return ReplyError(*ex,
                        {429,
                         fmt::format("Rate limit reached for {} per minute; retry in {} s.",
                                     d.limit, d.retry_after_seconds),
                         "rate_limit_error", "", std::string("rate_limit_") + d.limit},
                        request_id, std::move(h));
    }
  }
  if (path == "/v1/models" && pool->routable() == 0 && !ModelLabel().empty()) {
    // No replica right now (scaled to zero, rolling out): the names are still known.
    return ServeModelsLocally(*ex, request_id);
  }

  auto call = std::make_shared<ProxyCall>();
  call->r = shared_from_this();
  call->ex = ex;
  call->request_id = request_id;
  call->tenant = tenant;
  call->key_id = key_id;
  call->start = start;
  call->deadline = start + request_timeout;
  call->info = std::move(info);
  std::string session_key = ex->header(options.session_header);
  if (session_key.empty()) session_key = call->info.user;
  if (!session_key.empty()) call->session = HashString(session_key);
  auto req = std::make_shared<OutgoingRequest>();
  req->method = method;
  req->target = ex->target();
  for (const auto& [k, v] : ex->headers()) {
    if (HopByHopRequestHeader(k)) continue;
    if (!options.backend_api_key.empty() && (k == "authorization" || k == "x-api-key")) continue;
    req->headers.emplace_back(k, v);
  }
  for (auto& h : BackendAuth()) req->headers.push_back(std::move(h));
  req->headers.emplace_back("X-Request-Id", request_id);
  std::string xff = ex->header("x-forwarded-for");
  const std::string addr = RemoteAddress(ex->remote());
  req->headers.emplace_back("X-Forwarded-For", xff.empty() ? addr : xff + ", " + addr);
  req->body = std::make_shared<const std::string>(ex->body());
  call->req = std::move(req);
  inflight++;
  std::weak_ptr<ProxyCall> weak = call;
  ex->OnClose([weak] {
    if (auto c = weak.lock()) c->OnClientGone();
  });
  call->Dispatch();
}

void Impl::Hold(const std::shared_ptr<ProxyCall>& call) {
  {
    std::lock_guard<std::mutex> lk(held_mu);
    if (static_cast<int>(held.size()) >= options.max_held) {
      // The bounded queue is full.
      call->ReplyError({429,
                        fmt::format("no replica is ready and {} requests are already waiting for "
                                    "one; retry later",
                                    held.size()),
                        "rate_limit_error", "", "hold_queue_full"},
                       {{"Retry-After", "1"}});
      call->Finish(429, "hold queue full");
      return;
    }
    {
      std::lock_guard<std::mutex> clk(call->mu);
      call->is_held = true;
      if (call->held_until == Clock::time_point()) {
        call->held_until = Clock::now() + FromSeconds(options.hold_timeout_seconds);
        call->next_heartbeat = Clock::now() + FromSeconds(options.hold_heartbeat_seconds);
      }
    }
    held.push_back(call);
    held_count = static_cast<int>(held.size());
  }
  // A replica may have turned routable between the pick and the hold.
  if (pool->routable() > 0) {
    ReleaseHeld();
  } else if (unzero) {
    unzero->Wake();  // at zero (or all replicas gone): bring one up
  }
}

void Impl::ReleaseHeld() {
  std::list<std::shared_ptr<ProxyCall>> go;
  {
    std::lock_guard<std::mutex> lk(held_mu);
    go.swap(held);
    held_count = 0;
  }
  for (auto& c : go) {
    {
      std::lock_guard<std::mutex> lk(c->mu);
      c->is_held = false;
    }
    // Off the caller's thread (a probe's handler): each goes back through the pick.
    http->Post([c] { c->Dispatch(); });
  }
}

void Impl::ExpireHeld() {
  const Clock::time_point now = Clock::now();
  std::vector<std::shared_ptr<ProxyCall>> expired, beats;
  const bool heartbeats = options.hold_heartbeat_seconds > 0;
  {
    std::lock_guard<std::mutex> lk(held_mu);
    for (auto it = held.begin(); it != held.end();) {
      bool drop = false;
      {
        ProxyCall& c = **it;
        std::lock_guard<std::mutex> clk(c.mu);
        drop = c.client_gone || now >= c.held_until || refusing;
        if (drop) {
          c.is_held = false;
        } else if (heartbeats && c.info.stream && now >= c.next_heartbeat) {
          c.next_heartbeat = now + FromSeconds(options.hold_heartbeat_seconds);
          beats.push_back(*it);
        }
      }
      if (drop) {
        expired.push_back(*it);
        it = held.erase(it);
      } else {
        ++it;
      }
    }
    held_count = static_cast<int>(held.size());
  }
  for (auto& c : beats) c->Heartbeat();
  for (auto& c : expired) {
    bool gone = false;
    {
      std::lock_guard<std::mutex> lk(c->mu);
      gone = c->client_gone;
    }
    if (gone) {
      c->Finish(499, "client closed the connection while held");
      continue;
    }
    c->ReplyError({503,
                   fmt::format("no replica became ready within {} s; retry later",
                               options.hold_timeout_seconds),
                   "service_unavailable", "", "no_replica"},
                  {{"Retry-After", "5"}});
    c->Finish(503, "hold timeout");
  }
}

void Impl::Probe(const std::shared_ptr<Backend>& b) {
  if (!pool->BeginProbe(*b)) return;
  auto self = shared_from_this();
  client->Get(b->endpoint(), "/ready", BackendAuth(), std::chrono::seconds(2), 4096,
              [self, b](Result<UpstreamClient::SimpleResponse> r) {
                self->pool->OnProbe(*b, r.ok() && r->status == 200);
              });
}

void Impl::Scrape(const std::shared_ptr<Backend>& b) {
  if (!pool->BeginScrape(*b)) return;
  auto self = shared_from_this();
  client->Get(
      b->endpoint(), "/metrics", BackendAuth(), std::chrono::seconds(2), 8 << 20,
      [self, b](Result<UpstreamClient::SimpleResponse> r) {
        if (!r.ok()) {
          self->pool->OnScrape(*b, std::nullopt, r.status().code() == StatusCode::kUnavailable);
          return;
        }
        if (r->status != 200) return self->pool->OnScrape(*b, std::nullopt, false);
        ReplicaLoad load = ParseReplicaMetrics(r->body);
        self->pool->OnScrape(*b, load.has_load() ? std::optional(load) : std::nullopt, false);
      });
}

void Impl::LearnModelNames() {
  for (const auto& b : pool->Routable()) {
    auto self = shared_from_this();
    client->Get(
        b->endpoint(), "/v1/models", BackendAuth(), std::chrono::seconds(2), 1 << 20,
        [self](Result<UpstreamClient::SimpleResponse> r) {
          if (!r.ok() || r->status != 200) return;
          auto j = ParseJson(r->body, "/v1/models", 16);
          if (!j.ok() || !j->is_object() || !j->contains("data") || !(*j)["data"].is_array()) {
            return;
          }
          std::vector<std::string> names, adapters;
          for (const Json& m : (*j)["data"]) {
            if (m.is_object() && m.contains("id") && m["id"].is_string()) {
              names.push_back(m["id"].get<std::string>());
              if (m.contains("parent") && m["parent"].is_string()) adapters.push_back(names.back());
            }
          }
          if (names.empty()) return;
          std::lock_guard<std::mutex> lk(self->names_mu);
          if (self->learned_names != names) {
            KINFER_LOG_INFO("replicas serve: {}", fmt::join(names, ", "));
            self->learned_names = std::move(names);
          }
          self->adapters = std::move(adapters);
        });
    break;  // one replica says it for all
  }
}

void Impl::Maintain() {
  const Clock::duration scrape_every = FromSeconds(options.scrape_interval_seconds);
  const Clock::duration probe_every = FromSeconds(options.probe_interval_seconds);
  const Clock::duration names_every = std::chrono::seconds(10);
  Clock::time_point next_scrape{}, next_probe{}, next_names{};
  std::unique_lock<std::mutex> lk(mu);
  while (!stop) {
    lk.unlock();
    const Clock::time_point now = Clock::now();
    const bool probe = now >= next_probe, scrape = now >= next_scrape;
    if (probe || scrape) {
      for (const auto& b : pool->Backends()) {
        if (probe) Probe(b);
        if (scrape) Scrape(b);
      }
    }
    if (probe) next_probe = now + probe_every;
    if (scrape) next_scrape = now + scrape_every;
    if (now >= next_names) {
      LearnModelNames();
      bool known = false;
      {
        std::lock_guard<std::mutex> nl(names_mu);
        known = !learned_names.empty();
      }
      // Until the names are known, ask often; then every 10 s (adapters load at run time).
      next_names = now + (known ? names_every : std::chrono::seconds(1));
    }
    ExpireHeld();
    if (!discovery_ready && discovery && discovery->WaitForSync(std::chrono::milliseconds(0))) {
      discovery_ready = true;
      KINFER_LOG_INFO("replicas from {}: {} found", discovery->Describe(), pool->size());
    }
    lk.lock();
    cv.wait_until(lk, std::min(next_probe, next_scrape), [&] { return stop; });
  }
}

Router::Router(RouterOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
}

Router::~Router() {
  Impl& m = *impl_;
  m.unzero.reset();
  if (m.discovery) m.discovery->Stop();
  {
    std::lock_guard<std::mutex> lk(m.mu);
    m.stop = true;
  }
  m.cv.notify_all();
  if (m.maintenance.joinable()) m.maintenance.join();
  if (m.client) m.client->CloseIdle();
  if (m.http) m.http->Stop();
  if (m.metrics_http) m.metrics_http->Stop();
  {
    std::lock_guard<std::mutex> lk(m.held_mu);
    m.held.clear();
  }
}

Status Router::Start() {
  Impl& m = *impl_;
  const RouterOptions& o = m.options;
  if (o.backends.empty() == o.endpointslices.empty()) {
    return InvalidArgumentError(
        "give the replicas as --backends URL,... or --endpointslices "
        "NAMESPACE/SERVICE (one of the two)");
  }
  std::vector<DiscoveredEndpoint> endpoints;
  for (const std::string& url : o.backends) {
    KINFER_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(url));
    endpoints.push_back({ep, true, false, ""});
  }
  KINFER_ASSIGN_OR_RETURN(m.keys, server::ApiKeys::Load(o.api_keys, o.api_key_files));
  if (o.limits.enabled()) m.limiter = std::make_unique<RateLimiter>(o.limits);
  if (!o.model_path.empty()) {
    const Clock::time_point t0 = Clock::now();
    auto pm = PromptModel::Load(o.model_path, o.chat_template_file);
    if (!pm.ok()) return pm.status().WithPrefix("--model");
    m.model = std::move(*pm);
    KINFER_LOG_INFO("tokenizer and chat template of {} loaded in {:.2f} s{}", o.model_path,
                    Seconds(Clock::now() - t0),
                    m.model->info().chat ? "" : " (no chat template: chat prompts hash as bytes)");
  } else if (o.pool.policy == Policy::kPrefix) {
    KINFER_LOG_INFO(
        "prefix policy without --model: prompts are hashed as bytes, not as the engine's "
        "tokens (affinity works; the index does not mirror the replicas' caches exactly)");
  }
  m.flag_names = o.served_model_names;
  m.request_timeout = FromSeconds(o.request_timeout_seconds);
  m.pool = std::make_unique<BackendPool>(o.pool);
  m.pool->SetEndpoints(endpoints);
  m.SetupMetrics();

  std::weak_ptr<Impl> weak = impl_;
  m.http =
      std::make_unique<server::HttpServer>(o.http, [weak](const std::shared_ptr<HttpExchange>& ex) {
        if (auto s = weak.lock()) s->Handle(ex, false);
      });
  m.client = std::make_unique<UpstreamClient>(m.http->io_context(), o.upstream);
  m.pool->OnRoutable([weak] {
    if (auto s = weak.lock()) {
      s->ReleaseHeld();
      bool known = false;
      {
        std::lock_guard<std::mutex> lk(s->names_mu);
        known = !s->learned_names.empty();
      }
      if (!known) s->LearnModelNames();  // the first replica up says what it serves
    }
  });
  KINFER_RETURN_IF_ERROR(m.http->Start());
  if (o.metrics_port > 0) {
    server::HttpServerOptions mo = o.http;
    mo.port = o.metrics_port;
    mo.io_threads = 1;
    m.metrics_http =
        std::make_unique<server::HttpServer>(mo, [weak](const std::shared_ptr<HttpExchange>& ex) {
          if (auto s = weak.lock()) s->Handle(ex, true);
        });
    KINFER_RETURN_IF_ERROR(m.metrics_http->Start());
  }
  if (!o.endpointslices.empty()) {
    KINFER_ASSIGN_OR_RETURN(SliceSource source, ParseSliceSource(o.endpointslices));
    Impl* impl = &m;
    KINFER_ASSIGN_OR_RETURN(
        m.discovery, EndpointSliceDiscovery::Create(
                         source, o.kubeconfig, [impl](const std::vector<DiscoveredEndpoint>& eps) {
                           impl->SetEndpoints(eps);
                         }));
    m.discovery_ready = false;  // /ready waits for the first list
    m.discovery->Start();
  }
  if (!o.scale_from_zero.empty()) {
    KINFER_RETURN_IF_ERROR(m.StartScaleFromZero());
  }
  m.maintenance = std::thread([&m] { m.Maintain(); });
  pthread_setname_np(m.maintenance.native_handle(), "kinfer-probe");
  KINFER_LOG_INFO("router listening on http://{}:{} ({} policy, {} replicas{}){}", o.http.host,
                  m.http->port(), PolicyName(o.pool.policy), endpoints.size(),
                  m.discovery ? " until " + m.discovery->Describe() + " lists them" : "",
                  m.keys.enabled() ? fmt::format("; {} API keys", m.keys.size()) : "");
  return Status::Ok();
}

Status Impl::StartScaleFromZero() {
  const std::string& v = options.scale_from_zero;
  const size_t slash = v.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == v.size() ||
      v.find('/', slash + 1) != std::string::npos) {
    return InvalidArgumentError("--scale-from-zero: '{}' is not NAMESPACE/NAME (of an LLMService)",
                                v);
  }
  k8s::LoadOptions lo;
  lo.kubeconfig = options.kubeconfig;
  auto config = k8s::LoadClientConfig(lo);
  if (!config.ok()) return config.status().WithPrefix("--scale-from-zero: Kubernetes credentials");
  KINFER_ASSIGN_OR_RETURN(scale_client, k8s::Client::Create(std::move(*config)));
  static const k8s::ResourceType kLLMServices{"kinfer.dev", "v1alpha1", "llmservices", "LLMService",
                                              true};
  k8s::ScaleFromZeroOptions so;
  so.type = &kLLMServices;
  so.namespace_ = v.substr(0, slash);
  so.name = v.substr(slash + 1);
  // Held requests and nothing to send them to: the only case where 0 -> 1 is ours to do.
  unzero = std::make_unique<k8s::ScaleFromZero>(
      *scale_client, so, [this] { return held_count.load() > 0 && pool->routable() == 0; });
  KINFER_LOG_INFO(
      "scale from zero: held requests with no routable replica set LLMService {}/{} "
      "from 0 to 1 replicas",
      so.namespace_, so.name);
  return Status::Ok();
}

void Router::SetEndpoints(const std::vector<DiscoveredEndpoint>& endpoints) {
  impl_->SetEndpoints(endpoints);
}

void Impl::SetEndpoints(const std::vector<DiscoveredEndpoint>& endpoints) {
  std::vector<std::string> before;
  for (const auto& b : pool->Backends()) before.push_back(b->name());
  std::vector<Endpoint> left = pool->SetEndpoints(endpoints);
  for (const Endpoint& ep : left) {
    client->Forget(ep);
    KINFER_LOG_INFO("replica {} left", ep.ToString());
  }
  for (const DiscoveredEndpoint& d : endpoints) {
    const std::string name = d.endpoint.ToString();
    if (std::find(before.begin(), before.end(), name) == before.end()) {
      KINFER_LOG_INFO("replica {}{} joined{}", name, d.pod.empty() ? "" : " (" + d.pod + ")",
                      d.terminating ? " terminating"
                      : d.ready     ? ""
                                    : " not ready");
    }
  }
  // New replicas get probed now rather than at the next tick.
  cv.notify_all();
}

int Router::port() const { return impl_->http ? impl_->http->port() : 0; }
int Router::metrics_port() const { return impl_->metrics_http ? impl_->metrics_http->port() : 0; }

int Router::Run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  KINFER_LOG_INFO("received {}: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  Shutdown();
  return 0;
}

void Router::Shutdown() {
  Impl& m = *impl_;
  const Clock::time_point t0 = Clock::now();
  m.draining = true;
  std::this_thread::sleep_for(FromSeconds(m.options.drain_delay_seconds));
  m.refusing = true;
  m.ExpireHeld();
  KINFER_LOG_INFO("refusing new requests; waiting for {} in flight", m.inflight.load());
  {
    std::unique_lock<std::mutex> lk(m.mu);
    m.cv.wait_until(lk, t0 + FromSeconds(m.options.shutdown_timeout_seconds),
                    [&] { return m.inflight.load() == 0; });
  }
  if (m.inflight.load() > 0) {
    KINFER_LOG_WARN("shutdown timeout: {} requests still in flight are cut", m.inflight.load());
  }
  if (m.discovery) m.discovery->Stop();
  {
    std::lock_guard<std::mutex> lk(m.mu);
    m.stop = true;
  }
  m.cv.notify_all();
  if (m.maintenance.joinable()) m.maintenance.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // last writes
  m.client->CloseIdle();
  m.http->Stop();
  if (m.metrics_http) m.metrics_http->Stop();
  KINFER_LOG_INFO("stopped");
}

}  // namespace kinfer::router
