// One client request through the router: an attempt per replica tried, the response head
// held back until the first event (so that a replica dying before it can still be retried),
// then the body forwarded as it arrives. See router_internal.h.
#include <fmt/format.h>

#include "core/log.h"
#include "router/router_internal.h"
#include "server/openai_api.h"

namespace kinfer::router {

using Impl = Router::Impl;

namespace {

bool MessagesRoute(const std::string& path) { return path.rfind("/v1/messages", 0) == 0; }

// Anthropic's error types for the statuses the router answers.
const char* AnthropicErrorType(int status) {
  switch (status) {
    case 400:
    case 422:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return status == 504 ? "timeout_error" : "api_error";
  }
}

Json AnthropicError(const ApiError& e, const std::string& request_id) {
  Json j{{"type", "error"},
         {"error", {{"type", AnthropicErrorType(e.status)}, {"message", e.message}}}};
  if (!request_id.empty()) j["request_id"] = request_id;
  return j;
}

}  // namespace

std::string ErrorBody(const std::string& path, const ApiError& e, const std::string& request_id) {
  if (MessagesRoute(path)) return AnthropicError(e, request_id).dump();
  return server::ErrorJson(e);
}

std::string ErrorEvent(const std::string& path, const ApiError& e, const std::string& request_id) {
  if (MessagesRoute(path)) {
    return "event: error\ndata: " + AnthropicError(e, request_id).dump() + "\n\n";
  }
  if (path == "/v1/responses") {
    Json j{{"type", "error"},
           {"code", e.code.empty() ? Json(nullptr) : Json(e.code)},
           {"message", e.message},
           {"param", e.param.empty() ? Json(nullptr) : Json(e.param)}};
    return "event: error\ndata: " + j.dump() + "\n\n";
  }
  return "data: " + server::ErrorJson(e) + "\n\ndata: [DONE]\n\n";
}

void ProxyCall::Dispatch() {
  std::unique_lock<std::mutex> lk(mu);
  if (done) return;
  if (client_gone) {
    lk.unlock();
    return Finish(499, "client closed the connection");
  }
  const Clock::time_point t0 = Clock::now();
  auto pick = r->pool->Choose(info, tried, session);
  const Clock::time_point t1 = Clock::now();
  pick_s += Seconds(t1 - t0);
  if (!pick) {
    if (r->pool->routable() == 0 && r->options.hold_timeout_seconds > 0 && !r->refusing) {
      lk.unlock();
      return r->Hold(shared_from_this());
    }
    lk.unlock();
    return FailNoReplica();
  }
  backend = pick->backend;
  tried.push_back(backend->id());
  tried_names.push_back(backend->name());
  attempts++;
  prompt_blocks = pick->prompt_blocks;
  matched_blocks = pick->matched_blocks;
  status = 0;
  head = {};
  streaming = false;
  discard = false;
  buffered.clear();
  failure = AttemptFailure::kNone;
  if (attempts == 1) overhead_s = Seconds(t1 - start);
  auto self = shared_from_this();
  CallHandlers h;
  h.on_head = [self](ResponseHead hd) { self->OnHead(std::move(hd)); };
  h.on_body = [self](std::string_view b) { self->OnBody(b); };
  h.on_done = [self](const CallResult& res) { self->OnDone(res); };
  // Start may run the handlers on another thread at once: it is called without the lock.
  auto b = backend;
  lk.unlock();
  auto c = r->client->Start(b->endpoint(), req, std::move(h), deadline);
  lk.lock();
  if (!done && attempts > 0 && backend == b) call = c;
  const bool gone = client_gone;
  lk.unlock();
  if (gone) c->Cancel();
}

void ProxyCall::OnHead(ResponseHead h) {
  std::lock_guard<std::mutex> lk(mu);
  status = h.status;
  if (status == 503 || status == 429) {
    const AttemptFailure why =
        status == 503 ? AttemptFailure::kUnavailable : AttemptFailure::kRateLimited;
    if (r->options.retry.ShouldRetry(why, sent, retries, deadline - Clock::now())) {
      discard = true;
      failure = why;
      return;
    }
  }
  streaming = h.streamed;
  head = std::move(h);
}

void ProxyCall::ScanSse(std::string_view bytes) {
  // Completion tokens for the token rate limit: the usage chunk when the client asked for
  // one, else one token per content event (Kinfer sends a token per event at most).
  for (char c : bytes) {
    if (c != '\n') {
      if (sse_line.size() < 1 << 16) sse_line += c;
      continue;
    }
    if (sse_line.rfind("data: {", 0) == 0) {
      sse_events++;
      if (sse_line.find("\"usage\"") != std::string::npos) {
        auto j = ParseJson(std::string_view(sse_line).substr(6), "stream event", 16);
        if (j.ok() && j->is_object()) {
          auto u = j->find("usage");
          if (u != j->end() && u->is_object() && u->contains("total_tokens") &&
              (*u)["total_tokens"].is_number_integer()) {
            usage_total = (*u)["total_tokens"].get<int64_t>();
          }
        }
      }
    }
    sse_line.clear();
  }
}

void ProxyCall::OnBody(std::string_view bytes) {
  std::unique_lock<std::mutex> lk(mu);
  if (discard || done || client_gone) return;
  if (!streaming) {
    buffered.append(bytes);
    return;
  }
  if (!sent) {
    // The head goes out with the first event: until then a failure can still be retried.
    HeaderList headers;
    for (const auto& [k, v] : head.headers) {
      if (k == "server" || k == "Server" || k == "cache-control" || k == "Cache-Control") continue;
      headers.emplace_back(k, v);
    }
    if (!head_sent) {
      ex->StartStream(status, head.content_type.empty() ? "text/event-stream" : head.content_type,
                      headers);
    }
    sent = true;
    first_byte = Clock::now();
  }
  ex->Send(std::string(bytes));
  if (bytes.size() >= 2) {
    last_two[0] = bytes[bytes.size() - 2];
    last_two[1] = bytes.back();
  } else if (bytes.size() == 1) {
    last_two[0] = last_two[1];
    last_two[1] = bytes[0];
  }
  if (r->limiter && r->limiter->limits().tokens_per_minute > 0) ScanSse(bytes);
}

void ProxyCall::OnDone(const CallResult& res) {
  std::unique_lock<std::mutex> lk(mu);
  call.reset();
  // Passive health: what this attempt says about the replica.
  Outcome outcome = Outcome::kSuccess;
  if (res.error == CallError::kConnect) {
    outcome = Outcome::kConnectError;
  } else if (res.error == CallError::kReset) {
    outcome = Outcome::kReset;
  } else if (status >= 500 && res.head_received) {
    outcome = Outcome::kServerError;
  }
  std::shared_ptr<Backend> b = std::move(backend);
  backend.reset();
  if (b) {
    const bool ejected = r->pool->Release(*b, outcome);
    if (ejected) {
      r->ejections->Add({{"backend", b->name()}});
      KINFER_LOG_WARN("ejected replica {}: {}", b->name(),
                      res.message.empty() ? fmt::format("HTTP {}", status) : res.message);
    }
  }
  if (done) return;
  if (client_gone || res.error == CallError::kCancelled) {
    lk.unlock();
    return Finish(499, "client closed the connection");
  }
  if (b)
    r->requests->Add({{"backend", b->name()},
                      {"code", res.error == CallError::kNone ? std::to_string(status) : "error"}});
  if (res.error == CallError::kNone && discard) {
    last_error = fmt::format("{} answered {}", b ? b->name() : "", status);
    lk.unlock();
    return Retry(failure);
  }
  if (res.error != CallError::kNone) {
    AttemptFailure why = AttemptFailure::kReset;
    switch (res.error) {
      case CallError::kConnect:
        why = AttemptFailure::kConnect;
        break;
      case CallError::kTimeout:
        why = AttemptFailure::kTimeout;
        break;
      default:
        why = res.head_received ? AttemptFailure::kBrokenBody : AttemptFailure::kReset;
    }
    last_error = res.message;
    if (r->options.retry.ShouldRetry(why, sent, retries, deadline - Clock::now())) {
      lk.unlock();
      return Retry(why);
    }
    if (sent) {
      // The stream had begun: end it with an error event the OpenAI clients raise.
      ApiError e{502, "the replica failed while streaming: " + res.message, "server_error", "",
                 "upstream_error"};
      std::string event;
      if (!(last_two[0] == '\n' && last_two[1] == '\n')) event += "\n\n";
      event += ErrorEvent(ex->path(), e, request_id);
      ex->Send(event);
      ex->End();
      lk.unlock();
      return Finish(status, res.message);
    }
    ApiError e;
    if (why == AttemptFailure::kTimeout) {
      e = {504, "no replica answered before the request timeout (" + res.message + ")",
           "server_error", "", "upstream_timeout"};
    } else {
      e = {502, "the replica failed: " + res.message, "server_error", "", "upstream_error"};
    }
    lk.unlock();
    ReplyError(e);
    return Finish(e.status, res.message);
  }
  // A complete answer.
  if (streaming) {
    if (!sent) {
      HeaderList headers;
      for (const auto& [k, v] : head.headers) {
        if (k == "server" || k == "Server" || k == "cache-control" || k == "Cache-Control")
          continue;
        headers.emplace_back(k, v);
      }
      if (!head_sent) {
        ex->StartStream(status, head.content_type.empty() ? "text/event-stream" : head.content_type,
                        headers);
      }
      sent = true;
      first_byte = Clock::now();
    }
    ex->End();
  } else if (head_sent) {
    // The router answered 200 and heartbeats while the request was held: a sized answer goes
    // on in that stream (an error as the route's error event).
    if (status >= 400) {
      ApiError e{status, buffered, "server_error", "", ""};
      auto j = ParseJson(buffered, "response", 16);
      if (j.ok() && j->is_object()) {
        auto err = j->find("error");
        if (err != j->end() && err->is_object()) {
          if (err->contains("message") && (*err)["message"].is_string()) {
            e.message = (*err)["message"].get<std::string>();
          }
          if (err->contains("type") && (*err)["type"].is_string()) {
            e.type = (*err)["type"].get<std::string>();
          }
        }
      }
      ex->Send(ErrorEvent(ex->path(), e, request_id));
    } else {
      ex->Send(buffered);
    }
    ex->End();
    sent = true;
    first_byte = Clock::now();
  } else {
    HeaderList headers;
    for (const auto& [k, v] : head.headers) {
      if (k == "server" || k == "Server") continue;
      headers.emplace_back(k, v);
    }
    if (r->limiter && r->limiter->limits().tokens_per_minute > 0 && status == 200) {
      auto j = ParseJson(buffered, "response", 16);
      if (j.ok() && j->is_object()) {
        auto u = j->find("usage");
        if (u != j->end() && u->is_object() && u->contains("total_tokens") &&
            (*u)["total_tokens"].is_number_integer()) {
          usage_total = (*u)["total_tokens"].get<int64_t>();
        }
      }
    }
    ex->Respond(status, head.content_type.empty() ? "application/json" : head.content_type,
                buffered, headers);
    sent = true;
    first_byte = Clock::now();
  }
  lk.unlock();
  Finish(status, "");
}

void ProxyCall::Retry(AttemptFailure why) {
  {
    std::lock_guard<std::mutex> lk(mu);
    retries++;
  }
  r->retries->Add({{"reason", std::string(AttemptFailureName(why))}});
  Dispatch();
}

void ProxyCall::FailNoReplica() {
  ApiError e;
  std::unique_lock<std::mutex> lk(mu);
  if (tried.empty()) {
    e = {503, "no replica is ready to serve the request; retry later", "service_unavailable", "",
         "no_replica"};
  } else {
    e = {503, fmt::format("every replica tried failed ({} attempts): {}", attempts, last_error),
         "service_unavailable", "", "no_replica"};
  }
  lk.unlock();
  ReplyError(e, {{"Retry-After", "1"}});
  Finish(503, e.message);
}

void ProxyCall::OnClientGone() {
  std::shared_ptr<UpstreamCall> c;
  bool was_held = false;
  {
    std::lock_guard<std::mutex> lk(mu);
    client_gone = true;
    c = call;
    was_held = is_held;
  }
  if (c) {
    c->Cancel();  // closes the replica's connection: it aborts the request and frees its KV
  } else if (was_held) {
    Finish(499, "client closed the connection while held");
  }
}

void ProxyCall::ReplyError(const ApiError& e, HeaderList headers) {
  bool streaming_already = false;
  {
    std::lock_guard<std::mutex> lk(mu);
    streaming_already = head_sent;
  }
  if (streaming_already) {
    // The 200 went out with the heartbeats: the error ends the stream instead.
    ex->Send(ErrorEvent(ex->path(), e, request_id));
    ex->End();
    return;
  }
  headers.emplace_back("X-Request-Id", request_id);
  ex->Respond(e.status, "application/json", ErrorBody(ex->path(), e, request_id), headers);
}

void ProxyCall::Heartbeat() {
  std::lock_guard<std::mutex> lk(mu);
  // Released meanwhile (the replica's answer may be on its way) or over: no comment.
  if (!is_held || done || client_gone || !ex) return;
  if (!head_sent) {
    ex->StartStream(200, "text/event-stream", {{"X-Request-Id", request_id}});
    head_sent = true;
  }
  ex->Send(": waiting for a replica\n\n");
}

int64_t ProxyCall::TokensUsed() const {
  if (usage_total >= 0) return usage_total;
  return info.prompt_tokens_estimate + sse_events;
}

void ProxyCall::Finish(int final_status, const std::string& error) {
  {
    std::lock_guard<std::mutex> lk(mu);
    if (done) return;
    done = true;
  }
  const Clock::time_point now = Clock::now();
  if (final_status == 499 || !sent) {
    // Nothing answered yet (the client left, or an error path above already replied).
    if (!ex->responded()) {
      ApiError e{499, "client closed the connection", "invalid_request_error", "", ""};
      ex->Respond(499, "application/json", server::ErrorJson(e), {});
    }
  }
  if (r->limiter && r->limiter->limits().tokens_per_minute > 0 && final_status == 200) {
    r->limiter->Charge(tenant, TokensUsed() - info.prompt_tokens_estimate, now);
  }
  // Answered without an attempt (held, then timed out or refused): counted here; attempts
  // are counted per replica as they end.
  if (attempts == 0) r->requests->Add({{"backend", ""}, {"code", std::to_string(final_status)}});
  if (attempts > 0) {
    r->pick_seconds->Observe({}, pick_s);
    r->overhead_seconds->Observe({}, overhead_s);
    if (first_byte) r->ttfb_seconds->Observe({}, Seconds(*first_byte - start));
    if (prompt_blocks > 0) {
      r->prefix_match->Observe(
          {}, static_cast<double>(matched_blocks) / static_cast<double>(prompt_blocks));
    }
  }
  if (r->options.access_log) {
    Json line;
    line["request_id"] = request_id;
    line["method"] = ex->method();
    line["path"] = ex->path();
    line["status"] = final_status;
    line["latency_ms"] = Seconds(now - start) * 1000;
    line["ttfb_ms"] = first_byte ? Json(Seconds(*first_byte - start) * 1000) : Json(nullptr);
    line["attempts"] = attempts;
    line["retries"] = retries;
    line["backends"] = tried_names;
    line["model"] = info.model;
    line["stream"] = info.stream;
    if (prompt_blocks > 0) {
      line["prefix_blocks"] = prompt_blocks;
      line["prefix_matched"] = matched_blocks;
    }
    if (!key_id.empty()) line["key"] = key_id;
    line["remote"] = ex->remote();
    if (!error.empty()) line["error"] = error;
    r->AccessLog(std::move(line));
  }
  r->inflight--;
  r->cv.notify_all();
  ex.reset();
}

}  // namespace kinfer::router
