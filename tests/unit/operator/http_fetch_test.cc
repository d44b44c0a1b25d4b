// operator/http_fetch.h against a real HTTP server on loopback (server/http_server.h): bodies and
// codes per URL in order, a closed port, a server that never answers (the batch's deadline),
// a body over the cap, and the bearer token.
#include "operator/http_fetch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "server/http_server.h"

namespace kinfer::op {
namespace {

using namespace std::chrono_literals;

server::HttpServerOptions Loopback() {
  server::HttpServerOptions o;
  o.port = 0;
  return o;
}

int FreePortThatRefuses() {
  // A server started and stopped: its port is closed now.
  server::HttpServer s(Loopback(), [](auto ex) { ex->Respond(200, "t", ""); });
  EXPECT_TRUE(s.Start().ok());
  int port = s.port();
  s.Stop();
  return port;
}

TEST(HttpFetch, FetchesManyInOrderWithOneDeadline) {
  std::vector<std::shared_ptr<server::HttpExchange>> parked;
  std::mutex mu;
  server::HttpServer s(Loopback(), [&](std::shared_ptr<server::HttpExchange> ex) {
    if (ex->path() == "/metrics") {
      ex->Respond(200, "text/plain", "m 1\n");
    } else if (ex->path() == "/auth") {
      ex->Respond(200, "text/plain", ex->header("authorization"));
    } else if (ex->path() == "/big") {
      ex->Respond(200, "text/plain", std::string(5000, 'x'));
    } else if (ex->path() == "/hang") {
      std::lock_guard<std::mutex> lk(mu);
      parked.push_back(ex);  // never answered
    } else {
      ex->Respond(404, "text/plain", "no");
    }
  });
  ASSERT_TRUE(s.Start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(s.port());
  const std::string closed = "http://127.0.0.1:" + std::to_string(FreePortThatRefuses());
  FetchOptions o;
  o.timeout = 800ms;
  o.max_bytes = 1000;
  o.bearer_token = "tok";
  auto t0 = std::chrono::steady_clock::now();
  std::vector<FetchResult> r = FetchAll({base + "/metrics", base + "/missing", closed + "/metrics",
                                         base + "/hang", base + "/big", base + "/auth"},
                                        o);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.size(), 6u);
  EXPECT_TRUE(r[0].ok()) << r[0].status.ToString();
  EXPECT_EQ(r[0].body, "m 1\n");
  EXPECT_FALSE(r[1].ok());
  EXPECT_EQ(r[1].code, 404);
  EXPECT_EQ(r[2].status.code(), StatusCode::kUnavailable) << r[2].status.ToString();
  EXPECT_EQ(r[3].status.code(), StatusCode::kDeadlineExceeded) << r[3].status.ToString();
  EXPECT_EQ(r[4].status.code(), StatusCode::kResourceExhausted) << r[4].status.ToString();
  EXPECT_TRUE(r[5].ok());
  EXPECT_EQ(r[5].body, "Bearer tok");
  // One deadline for the batch, not one per URL.
  EXPECT_LT(took, 2500ms);
  {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& ex : parked) ex->Respond(200, "text/plain", "late");
    parked.clear();  // exchanges must not outlive the server that made them
  }
  s.Stop();
}

TEST(HttpFetch, AStopRequestEndsTheBatch) {
  std::vector<std::shared_ptr<server::HttpExchange>> parked;
  std::mutex mu;
  server::HttpServer s(Loopback(), [&](std::shared_ptr<server::HttpExchange> ex) {
    std::lock_guard<std::mutex> lk(mu);
    parked.push_back(ex);
  });
  ASSERT_TRUE(s.Start().ok());
  std::stop_source stop;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  std::vector<FetchResult> r = FetchAll(
      {"http://127.0.0.1:" + std::to_string(s.port()) + "/x"},
      FetchOptions{.timeout = 10s, .max_bytes = 1 << 20, .bearer_token = ""}, stop.get_token());
  canceller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(r[0].status.code(), StatusCode::kCancelled);
  {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& ex : parked) ex->Respond(200, "text/plain", "late");
    parked.clear();  // exchanges must not outlive the server that made them
  }
  s.Stop();
}

}  // namespace
}  // namespace kinfer::op
