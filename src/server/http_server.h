// The HTTP/1.1 front door: Boost.Beast on Boost.Asio, plain or TLS, a few I/O threads, keep-
// alive, request size limits, and server-sent-event streaming with disconnect detection. All
// of Beast stays inside http_server.cc; the rest of the server sees only HttpExchange.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace kinfer::server {

class Session;

// One request and its response. The handler may answer at once or later from any thread; all
// methods are thread-safe. A response is either one Respond(), or StartStream() followed by
// any number of Send() and one End().
class HttpExchange {
 public:
  struct Request {
    std::string method, target, body, remote;
    std::map<std::string, std::string> headers;  // lower-cased names
    bool keep_alive = true;
  };
  HttpExchange(std::shared_ptr<Session> session, Request request);
  ~HttpExchange();

  const std::string& method() const { return method_; }
  const std::string& target() const { return target_; }  // path and query
  const std::string& path() const { return path_; }      // without the query
  const std::string& body() const { return body_; }
  // Header value by case-insensitive name; empty if absent.
  std::string header(const std::string& name) const;
  // Every header, by lower-cased name (the router forwards them).
  const std::map<std::string, std::string>& headers() const { return headers_; }
  const std::string& remote() const { return remote_; }

  void Respond(int status, const std::string& content_type, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  void StartStream(int status, const std::string& content_type,
                   const std::vector<std::pair<std::string, std::string>>& headers = {});
  void Send(const std::string& data);
  void End();

  // The response will carry `Connection: close` and the connection ends after it (call before
  // responding). A draining server does this so keep-alive clients reconnect to another replica
  // instead of sending their next request to one about to refuse it.
  void CloseAfterResponse() { keep_alive_ = false; }

  // Called once, on an I/O thread, when the client goes away before the response is complete.
  void OnClose(std::function<void()> fn);
  bool responded() const { return responded_; }

 private:
  std::shared_ptr<Session> session_;
  std::string method_, target_, path_, body_, remote_;
  std::map<std::string, std::string> headers_;
  std::atomic<bool> responded_{false};
  bool keep_alive_ = true;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  int io_threads = 2;
  std::string tls_cert_file;  // both set: serve HTTPS
  std::string tls_key_file;
  uint64_t max_body_bytes = 32 << 20;
  int idle_timeout_seconds = 75;  // keep-alive connections with no request
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();

  // Binds and starts the I/O threads. The bound port (when 0 was asked) is port().
  Status Start();
  // Stops accepting and closes every connection; joins the I/O threads.
  void Stop();
  int port() const;
  // Runs fn on an I/O thread.
  void Post(std::function<void()> fn);
  // Connections open now.
  int open_connections() const;
  // The I/O context the server's threads run. The router opens its connections to replicas on
  // it, so that a proxied request and its upstream share threads instead of hopping between
  // pools. Valid for the server's lifetime; its threads run from Start() to Stop().
  boost::asio::io_context& io_context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Status text for an HTTP status code ("Not Found").
std::string_view HttpReason(int status);

}  // namespace kinfer::server
