// The upstream client against a real HTTP/1.1 server (server::HttpServer, what every replica
// runs): sized and chunked bodies, a stream handed over event by event while the server is
// still writing, keep-alive reuse, a pooled connection the server closed, refused connections,
// cancellation the server sees as a disconnect, and deadlines.
#include "router/upstream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "server/http_server.h"

namespace kinfer::router {
namespace {

using Exchange = std::shared_ptr<server::HttpExchange>;

struct Done {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  ResponseHead head;
  std::string body;
  std::vector<std::string> pieces;
  CallResult result;
  CallHandlers Handlers() {
    return {[this](ResponseHead h) {
              std::lock_guard<std::mutex> lk(mu);
              head = std::move(h);
            },
            [this](std::string_view b) {
              std::lock_guard<std::mutex> lk(mu);
              body.append(b);
              pieces.emplace_back(b);
              cv.notify_all();
            },
            [this](const CallResult& r) {
              std::lock_guard<std::mutex> lk(mu);
              result = r;
              finished = true;
              cv.notify_all();
            }};
  }
  bool Wait(std::chrono::milliseconds d = std::chrono::milliseconds(5000)) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, d, [&] { return finished; });
  }
};

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::HttpServerOptions o;
    o.port = 0;
    o.io_threads = 2;
    server_ = std::make_unique<server::HttpServer>(o, [this](Exchange ex) { Handle(ex); });
    ASSERT_TRUE(server_->Start().ok());
    // The client has its own I/O thread here, so the server can restart under it.
    client_ = std::make_unique<UpstreamClient>(ioc_, UpstreamOptions{});
    io_thread_ = std::thread([this] { ioc_.run(); });
    ep_ = Endpoint{"127.0.0.1", server_->port()};
  }
  void TearDown() override {
    client_->CloseIdle();
    server_->Stop();
    for (auto& t : threads_) t.join();
    work_.reset();
    ioc_.stop();
    io_thread_.join();
    client_.reset();
  }
  void RestartServer() {
    const int port = server_->port();
    server_->Stop();
    server::HttpServerOptions o;
    o.port = port;
    server_ = std::make_unique<server::HttpServer>(o, [this](Exchange ex) { Handle(ex); });
    ASSERT_TRUE(server_->Start().ok());
  }
  void Handle(Exchange ex) {
    ++requests_;
    if (ex->path() == "/echo") {
      ex->Respond(200, "application/json", "{\"body\":" + std::to_string(ex->body().size()) + "}",
                  {{"X-Seen-Header", ex->header("x-test")}, {"X-Method", ex->method()}});
    } else if (ex->path() == "/stream") {
      // Three events, 150 ms apart, from another thread: as the engine emits tokens.
      ex->StartStream(200, "text/event-stream");
      threads_.emplace_back([ex] {
        for (int i = 0; i < 3; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(150));
          ex->Send("data: " + std::to_string(i) + "\n\n");
        }
        ex->End();
      });
    } else if (ex->path() == "/hang") {
      ex->OnClose([this] {
        std::lock_guard<std::mutex> lk(closed_mu_);
        closed_ = true;
        closed_cv_.notify_all();
      });
      hung_ = ex;  // answered never (until teardown)
    } else {
      ex->Respond(404, "text/plain", "no");
    }
  }
  std::shared_ptr<const OutgoingRequest> Req(const std::string& method, const std::string& target,
                                             std::string body = "") {
    auto r = std::make_shared<OutgoingRequest>();
    r->method = method;
    r->target = target;
    r->headers = {{"X-Test", "yes"}};
    r->body = std::make_shared<const std::string>(std::move(body));
    return r;
  }
  UpstreamClient::Clock::time_point Soon() {
    return UpstreamClient::Clock::now() + std::chrono::seconds(5);
  }

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(ioc_);
  std::thread io_thread_;
  std::unique_ptr<server::HttpServer> server_;
  std::unique_ptr<UpstreamClient> client_;
  Endpoint ep_;
  std::atomic<int> requests_{0};
  std::vector<std::thread> threads_;
  Exchange hung_;
  std::mutex closed_mu_;
  std::condition_variable closed_cv_;
  bool closed_ = false;
};

TEST(Endpoint, ParsesUrlsAndRefusesWhatItCannotServe) {
  auto a = ParseEndpoint("http://10.1.2.3:8000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "10.1.2.3");
  EXPECT_EQ(a->port, 8000);
  EXPECT_EQ(ParseEndpoint("replica-0.svc:9000/")->port, 9000);
  EXPECT_EQ(ParseEndpoint("host")->port, 80);
  auto v6 = ParseEndpoint("http://[fd00::1]:8000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "fd00::1");
  EXPECT_EQ(v6->ToString(), "[fd00::1]:8000");
  for (const char* bad : {"https://x:1", "http://x:1/v1", "http://x:0", "http://x:70000",
                          "http://:80", "fd00::1:80", "http://[::1", "http://a b:1"}) {
    EXPECT_FALSE(ParseEndpoint(bad).ok()) << bad;
  }
}

TEST_F(UpstreamTest, SizedBodyAndHeadersBothWays) {
  Done d;
  client_->Start(ep_, Req("POST", "/echo", std::string(200000, 'x')), d.Handlers(), Soon());
  ASSERT_TRUE(d.Wait());
  EXPECT_EQ(d.result.error, CallError::kNone) << d.result.message;
  EXPECT_EQ(d.head.status, 200);
  EXPECT_FALSE(d.head.streamed);
  EXPECT_EQ(d.head.content_type, "application/json");
  EXPECT_EQ(d.body, "{\"body\":200000}");
  bool seen = false;
  for (auto& [k, v] : d.head.headers) seen |= k == "X-Seen-Header" && v == "yes";
  EXPECT_TRUE(seen);
  for (auto& [k, v] : d.head.headers) EXPECT_NE(k, "Content-Length");
}

TEST_F(UpstreamTest, StreamArrivesEventByEvent) {
  Done d;
  const auto t0 = std::chrono::steady_clock::now();
  client_->Start(ep_, Req("GET", "/stream"), d.Handlers(), Soon());
  {
    std::unique_lock<std::mutex> lk(d.mu);
    ASSERT_TRUE(d.cv.wait_for(lk, std::chrono::seconds(5), [&] { return !d.body.empty(); }));
    // The first event came long before the stream ended (at 450 ms).
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(400));
    EXPECT_EQ(d.body, "data: 0\n\n");
    EXPECT_TRUE(d.head.streamed);
  }
  ASSERT_TRUE(d.Wait());
  EXPECT_EQ(d.result.error, CallError::kNone);
  EXPECT_EQ(d.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  EXPECT_GE(d.pieces.size(), 3u);
}

TEST_F(UpstreamTest, ReusesKeepAliveConnections) {
  for (int i = 0; i < 5; ++i) {
    Done d;
    client_->Start(ep_, Req("GET", "/echo"), d.Handlers(), Soon());
    ASSERT_TRUE(d.Wait());
    ASSERT_EQ(d.head.status, 200);
  }
  EXPECT_EQ(client_->idle_connections(), 1u);
  EXPECT_EQ(server_->open_connections(), 1);
}

TEST_F(UpstreamTest, APooledConnectionTheServerClosedIsReplaced) {
  Done a;
  client_->Start(ep_, Req("GET", "/echo"), a.Handlers(), Soon());
  ASSERT_TRUE(a.Wait());
  EXPECT_EQ(client_->idle_connections(), 1u);
  // The replica closes every connection (a restart, or its keep-alive idle timeout) ...
  RestartServer();
  // ... and the next call still succeeds, on a fresh connection.
  Done b;
  client_->Start(ep_, Req("GET", "/echo"), b.Handlers(), Soon());
  ASSERT_TRUE(b.Wait());
  EXPECT_EQ(b.result.error, CallError::kNone) << b.result.message;
  EXPECT_EQ(b.head.status, 200);
}

TEST_F(UpstreamTest, RefusedConnectionIsAConnectError) {
  Done d;
  client_->Start(Endpoint{"127.0.0.1", 1}, Req("GET", "/echo"), d.Handlers(), Soon());
  ASSERT_TRUE(d.Wait());
  EXPECT_EQ(d.result.error, CallError::kConnect);
  EXPECT_FALSE(d.result.head_received);
}

TEST_F(UpstreamTest, CancelClosesTheConnectionAndTheServerSeesIt) {
  Done d;
  auto call = client_->Start(ep_, Req("POST", "/hang", "{}"), d.Handlers(), Soon());
  while (requests_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  call->Cancel();
  ASSERT_TRUE(d.Wait());
  EXPECT_EQ(d.result.error, CallError::kCancelled);
  std::unique_lock<std::mutex> lk(closed_mu_);
  EXPECT_TRUE(closed_cv_.wait_for(lk, std::chrono::seconds(5), [&] { return closed_; }));
  call->Cancel();  // again: harmless
}

TEST_F(UpstreamTest, NoHeadBeforeTheDeadlineIsATimeout) {
  Done d;
  client_->Start(ep_, Req("POST", "/hang", "{}"), d.Handlers(),
                 UpstreamClient::Clock::now() + std::chrono::milliseconds(300));
  ASSERT_TRUE(d.Wait());
  EXPECT_EQ(d.result.error, CallError::kTimeout);
}

TEST_F(UpstreamTest, GetReturnsTheWholeBodyOrSaysWhy) {
  std::mutex mu;
  std::condition_variable cv;
  int n = 0;
  Result<UpstreamClient::SimpleResponse> ok = UpstreamClient::SimpleResponse{}, big = ok,
                                         refused = ok;
  auto set = [&](Result<UpstreamClient::SimpleResponse>* out) {
    return [&, out](Result<UpstreamClient::SimpleResponse> r) {
      std::lock_guard<std::mutex> lk(mu);
      *out = std::move(r);
      ++n;
      cv.notify_all();
    };
  };
  client_->Get(ep_, "/echo", {}, std::chrono::seconds(5), 1000, set(&ok));
  client_->Get(ep_, "/stream", {}, std::chrono::seconds(5), 10, set(&big));
  client_->Get(Endpoint{"127.0.0.1", 1}, "/ready", {}, std::chrono::seconds(5), 10, set(&refused));
  std::unique_lock<std::mutex> lk(mu);
  ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(5), [&] { return n == 3; }));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "{\"body\":0}");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace kinfer::router
