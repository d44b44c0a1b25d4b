#include "operator/http_fetch.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include <fmt/format.h>

namespace kinfer::op {
namespace {

struct Transfer {
  CURL* easy = nullptr;
  std::string body;
  size_t max_bytes = 0;
  bool too_large = false;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
};

size_t OnData(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->body.size() + bytes > t->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->body.append(data, bytes);
  return bytes;
}

}  // namespace

std::vector<FetchResult> FetchAll(const std::vector<std::string>& urls, const FetchOptions& o,
                                  std::stop_token stop) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::vector<FetchResult> out(urls.size());
  if (urls.empty()) return out;
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(),
                                                              &curl_multi_cleanup);
  std::vector<Transfer> transfers(urls.size());
  const std::string auth = o.bearer_token.empty() ? "" : "Authorization: Bearer " + o.bearer_token;
  for (size_t i = 0; i < urls.size(); ++i) {
    Transfer& t = transfers[i];
    t.max_bytes = o.max_bytes;
    t.easy = curl_easy_init();
    if (!t.easy || !multi) {
      out[i].status = Status(StatusCode::kInternal, "curl: out of memory");
      continue;
    }
    curl_easy_setopt(t.easy, CURLOPT_URL, urls[i].c_str());
    curl_easy_setopt(t.easy, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(t.easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(t.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout.count()));
    curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, &OnData);
    curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.easy, CURLOPT_ERRORBUFFER, t.error);
    if (!auth.empty()) {
      t.headers = curl_slist_append(nullptr, auth.c_str());
      curl_easy_setopt(t.easy, CURLOPT_HTTPHEADER, t.headers);
    }
    curl_multi_add_handle(multi.get(), t.easy);
  }
  int running = 0;
  const auto deadline = std::chrono::steady_clock::now() + o.timeout + std::chrono::seconds(1);
  do {
    if (curl_multi_perform(multi.get(), &running) != CURLM_OK) break;
    if (running == 0 || stop.stop_requested() || std::chrono::steady_clock::now() > deadline) {
      break;
    }
    curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr);
  } while (true);

  // What finished, and how.
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    // The message lives in the easy handle, freed below: copy what it says first.
    CURL* const done = msg->easy_handle;
    const CURLcode result = msg->data.result;
    for (size_t i = 0; i < transfers.size(); ++i) {
      Transfer& t = transfers[i];
      if (t.easy != done) continue;
      FetchResult& r = out[i];
      if (t.too_large) {
        r.status = Status(StatusCode::kResourceExhausted,
                          fmt::format("GET {}: body over {} bytes", urls[i], o.max_bytes));
      } else if (result != CURLE_OK) {
        r.status = Status(
            result == CURLE_OPERATION_TIMEDOUT ? StatusCode::kDeadlineExceeded
                                               : StatusCode::kUnavailable,
            fmt::format("GET {}: {}", urls[i], t.error[0] ? t.error : curl_easy_strerror(result)));
      } else {
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &r.code);
        r.body = std::move(t.body);
        if (r.code != 200) {
          r.status =
              Status(StatusCode::kUnavailable, fmt::format("GET {}: HTTP {}", urls[i], r.code));
        }
      }
      t.body.clear();
      curl_multi_remove_handle(multi.get(), t.easy);
      curl_easy_cleanup(t.easy);
      t.easy = nullptr;
      break;
    }
  }
  for (size_t i = 0; i < transfers.size(); ++i) {
    Transfer& t = transfers[i];
    if (t.easy) {
      // Never finished: the stop token or the deadline.
      out[i].status =
          stop.stop_requested()
              ? Status(StatusCode::kCancelled, fmt::format("GET {}: cancelled", urls[i]))
              : Status(StatusCode::kDeadlineExceeded,
                       fmt::format("GET {}: no answer within {} ms", urls[i], o.timeout.count()));
      curl_multi_remove_handle(multi.get(), t.easy);
      curl_easy_cleanup(t.easy);
    }
    curl_slist_free_all(t.headers);
  }
  return out;
}

}  // namespace kinfer::op
