#include "k8s/transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace kinfer::k8s::internal {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CallState {
  const HttpCall* call;
  HttpResult* result;
  CURL* easy;
  bool aborted_by_sink = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<CallState*>(user);
  size_t len = size * n;
  if (st->call->on_body) {
    st->result->streamed_any = true;
    if (st->result->code == 0)
      curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &st->result->code);
    if (!st->call->on_body(st->result->code, std::string_view(data, len))) {
      st->aborted_by_sink = true;
      return 0;
    }
    return len;
  }
  st->result->body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<CallState*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) st->result->headers.clear();  // a new response (redirect)
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    st->result->headers[name] = std::string(value);
  }
  return size * n;
}

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

struct Transport::Session {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  Session() {
    multi = curl_multi_init();
    easy = curl_easy_init();
  }
  ~Session() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

Transport::Transport(ClientConfig config) : config_(std::move(config)) { GlobalInit(); }

Transport::~Transport() = default;

std::unique_ptr<Transport::Session> Transport::Checkout() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  return std::make_unique<Session>();
}

void Transport::Return(std::unique_ptr<Session> s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 8) idle_.push_back(std::move(s));
}

Result<HttpResult> Transport::Perform(const HttpCall& call, std::stop_token stop) {
  if (stop.stop_requested()) return CancelledError("{} {}: cancelled", call.method, call.path);
  std::unique_ptr<Session> s = Checkout();
  if (s->multi == nullptr || s->easy == nullptr) return InternalError("curl initialization failed");
  CURL* c = s->easy;
  curl_easy_reset(c);  // keeps the connection and TLS session caches

  HttpResult result;
  CallState state{&call, &result, c};
  std::string url = config_.server + call.path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  if (call.timeout_seconds > 0) {
    curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(call.timeout_seconds));
  }
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, config_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &state);
  if (!config_.proxy_url.empty()) curl_easy_setopt(c, CURLOPT_PROXY, config_.proxy_url.c_str());

  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!config_.client_cert_pem.empty()) {
    curl_blob cert{const_cast<char*>(config_.client_cert_pem.data()),
                   config_.client_cert_pem.size(), CURL_BLOB_NOCOPY};
    curl_blob key{const_cast<char*>(config_.client_key_pem.data()), config_.client_key_pem.size(),
                  CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  }

  curl_slist* raw_headers = nullptr;
  raw_headers = curl_slist_append(raw_headers, ("Accept: " + call.accept).c_str());
  if (!call.content_type.empty()) {
    raw_headers = curl_slist_append(raw_headers, ("Content-Type: " + call.content_type).c_str());
  }
  if (config_.token) {
    KINFER_ASSIGN_OR_RETURN(std::string token, config_.token->Token());
    raw_headers = curl_slist_append(raw_headers, ("Authorization: Bearer " + token).c_str());
  }
  raw_headers = curl_slist_append(raw_headers, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, SlistFree> headers(raw_headers);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  if (call.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    if (call.method != "DELETE" || !call.body.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    }
  }

  CURLM* multi = s->multi;
  curl_multi_add_handle(multi, c);
  CURLcode done_code = CURLE_OK;
  bool done = false;
  bool cancelled = false;
  {
    // Wakes the poll below the moment a stop is requested, from whichever thread asks.
    std::stop_callback wake(stop, [multi] { curl_multi_wakeup(multi); });
    while (!done) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(multi, &running);
      if (mc != CURLM_OK) {
        done_code = CURLE_FAILED_INIT;
        break;
      }
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg == CURLMSG_DONE) {
          done = true;
          done_code = m->data.result;
        }
      }
      if (done) break;
      if (stop.stop_requested()) {
        cancelled = true;
        break;
      }
      curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
      if (stop.stop_requested()) {
        cancelled = true;
        break;
      }
    }
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.code);
  curl_multi_remove_handle(multi, c);
  // The connection of a cancelled or failed call may be half-used: drop it with the session.
  bool reusable = done && done_code == CURLE_OK;
  if (reusable) Return(std::move(s));

  if (cancelled || state.aborted_by_sink) {
    return CancelledError("{} {}: cancelled", call.method, call.path);
  }
  if (done_code == CURLE_OPERATION_TIMEDOUT) {
    return DeadlineExceededError("{} {}{}: timed out after {}s", call.method, config_.server,
                                 call.path, call.timeout_seconds);
  }
  if (done_code != CURLE_OK) {
    return UnavailableError("{} {}{}: {}", call.method, config_.server, call.path,
                            curl_easy_strerror(done_code));
  }
  return result;
}

}  // namespace kinfer::k8s::internal
