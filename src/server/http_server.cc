// Boost.Beast lives only in this file: it is heavy to compile.
#include "server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/log.h"

namespace kinfer::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string_view HttpReason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string StatusLine(int status) {
  return fmt::format("HTTP/1.1 {} {}\r\n", status, HttpReason(status));
}

std::string ErrorResponse(int status, std::string_view message) {
  std::string body = fmt::format(
      R"({{"error":{{"message":"{}","type":"invalid_request_error","param":null,"code":null}}}})",
      message);
  return StatusLine(status) +
         fmt::format(
             "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n"
             "Server: kinfer\r\n\r\n",
             body.size()) +
         body;
}

}  // namespace

// A connection: reads requests, hands each to the handler as an HttpExchange, writes what the
// exchange produces. Everything runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(const HttpServerOptions& options, HttpHandler& handler, std::atomic<int>& open)
      : options_(options), handler_(handler), open_(open) {
    ++open_;
  }
  virtual ~Session() { --open_; }

  virtual void Start() = 0;
  virtual void Close() = 0;

  // From any thread.
  void QueueWrite(std::string bytes, bool completes_response, bool keep_alive) {
    Dispatch([self = shared_from_this(), bytes = std::move(bytes), completes_response,
              keep_alive]() mutable {
      if (self->closed_) return;
      self->outq_.push_back(std::move(bytes));
      if (completes_response) {
        self->response_complete_ = true;
        self->keep_alive_ = keep_alive;
        self->on_close_ = nullptr;
      }
      if (!self->writing_) self->DoWrite();
    });
  }
  void SetOnClose(std::function<void()> fn) {
    Dispatch([self = shared_from_this(), fn = std::move(fn)]() mutable {
      if (self->closed_ && !self->response_complete_) {
        fn();
        return;
      }
      if (!self->response_complete_) self->on_close_ = std::move(fn);
    });
  }

 protected:
  virtual void Dispatch(std::function<void()> fn) = 0;
  virtual void DoWrite() = 0;

  // The client went away while a response was pending.
  void NotifyClosed() {
    if (closed_) return;
    closed_ = true;
    if (auto fn = std::move(on_close_)) {
      on_close_ = nullptr;
      fn();
    }
  }

  const HttpServerOptions& options_;
  HttpHandler& handler_;
  std::atomic<int>& open_;
  std::deque<std::string> outq_;
  std::string wbuf_;
  bool writing_ = false;
  bool response_complete_ = true;
  bool keep_alive_ = true;
  bool closed_ = false;
  bool reading_ = false;
  std::function<void()> on_close_;
};

namespace {

template <typename Stream>
class SessionImpl : public Session {
 public:
  SessionImpl(Stream stream, const HttpServerOptions& options, HttpHandler& handler,
              std::atomic<int>& open, std::string remote)
      : Session(options, handler, open), stream_(std::move(stream)), remote_(std::move(remote)) {}

  void Start() override {
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    net::dispatch(stream_.get_executor(), [self] {
      if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
        beast::get_lowest_layer(self->stream_).expires_after(std::chrono::seconds(30));
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return self->Shutdown();
          self->DoRead();
        });
      } else {
        self->DoRead();
      }
    });
  }

  void Close() override {
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    net::post(stream_.get_executor(), [self] {
      self->closed_ = true;
      self->on_close_ = nullptr;
      beast::error_code ec;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(self->stream_).close();
    });
  }

 protected:
  void Dispatch(std::function<void()> fn) override {
    net::dispatch(stream_.get_executor(), std::move(fn));
  }

  void DoRead() {
    if (closed_) return;
    reading_ = true;
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(options_.idle_timeout_seconds));
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    http::async_read(stream_, buffer_, *parser_,
                     [self](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return Shutdown();
    }
    if (ec == http::error::body_limit) {
      return WriteAndClose(ErrorResponse(
          413, fmt::format("request body exceeds the limit of {} bytes (--max-request-body-bytes)",
                           options_.max_body_bytes)));
    }
    if (ec == http::error::header_limit) {
      return WriteAndClose(ErrorResponse(431, "request headers are too large"));
    }
    if (ec) return WriteAndClose(ErrorResponse(400, "malformed HTTP request"));

    http::request<http::string_body> req = parser_->release();
    beast::get_lowest_layer(stream_).expires_never();
    HttpExchange::Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = std::move(req.body());
    r.remote = remote_;
    r.keep_alive = req.keep_alive();
    for (const auto& field : req) {
      r.headers[Lower(std::string(field.name_string()))] = std::string(field.value());
    }
    auto ex = std::make_shared<HttpExchange>(shared_from_this(), std::move(r));
    response_complete_ = false;
    keep_alive_ = req.keep_alive();
    WatchForDisconnect();
    handler_(std::move(ex));
  }

  // Waits for the socket to turn readable while a response is pending: a peek of zero bytes
  // (or a TLS alert) means the client closed, which cancels its request.
  void WatchForDisconnect() {
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    auto& sock = beast::get_lowest_layer(stream_).socket();
    sock.async_wait(tcp::socket::wait_read,
                    net::bind_executor(stream_.get_executor(), [self](beast::error_code ec) {
                      if (self->response_complete_ || self->reading_ || self->closed_) return;
                      auto& s = beast::get_lowest_layer(self->stream_).socket();
                      if (ec) {
                        if (ec != net::error::operation_aborted) self->NotifyClosed();
                        return;
                      }
                      unsigned char byte = 0;
                      ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                      bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
                      if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
                        gone = gone || (n == 1 && byte == 0x15);  // TLS alert record: close_notify
                      }
                      if (gone) {
                        self->NotifyClosed();
                        beast::error_code ignored;
                        s.shutdown(tcp::socket::shutdown_both, ignored);
                        s.close(ignored);
                      }
                      // Other bytes (a pipelined request) are left for the next read.
                    }));
  }

  void DoWrite() override {
    if (outq_.empty() || closed_) return;
    writing_ = true;
    wbuf_.clear();
    while (!outq_.empty()) {
      wbuf_ += outq_.front();
      outq_.pop_front();
    }
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(120));
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    net::async_write(stream_, net::buffer(wbuf_), [self](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      beast::get_lowest_layer(self->stream_).expires_never();
      if (ec) {
        self->NotifyClosed();
        return self->Shutdown();
      }
      if (!self->outq_.empty()) return self->DoWrite();
      if (self->response_complete_) {
        if (self->keep_alive_ && !self->close_after_write_) {
          self->DoRead();
        } else {
          self->Shutdown();
        }
      }
    });
  }

  void WriteAndClose(std::string bytes) {
    close_after_write_ = true;
    response_complete_ = true;
    outq_.push_back(std::move(bytes));
    if (!writing_) DoWrite();
  }

  void Shutdown() {
    closed_ = true;
    on_close_ = nullptr;
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
      stream_.async_shutdown([self](beast::error_code) {
        beast::error_code e;
        beast::get_lowest_layer(self->stream_).socket().close(e);
      });
    } else {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream_.socket().close(ec);
    }
  }

 private:
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool close_after_write_ = false;
};

}  // namespace

HttpExchange::HttpExchange(std::shared_ptr<Session> session, Request r)
    : session_(std::move(session)),
      method_(std::move(r.method)),
      target_(std::move(r.target)),
      path_(target_.substr(0, target_.find('?'))),
      body_(std::move(r.body)),
      remote_(std::move(r.remote)),
      headers_(std::move(r.headers)),
      keep_alive_(r.keep_alive) {}

HttpExchange::~HttpExchange() {
  if (!responded_ && session_) {
    // A handler that dropped the exchange without answering: never leave the client hanging.
    session_->QueueWrite(ErrorResponse(500, "the request was dropped without a response"), true,
                         false);
  }
}

std::string HttpExchange::header(const std::string& name) const {
  auto it = headers_.find(Lower(name));
  return it == headers_.end() ? std::string() : it->second;
}

void HttpExchange::Respond(int status, const std::string& content_type, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  if (responded_.exchange(true)) return;
  std::string out = StatusLine(status);
  out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\nServer: kinfer\r\n", content_type,
                     body.size());
  for (const auto& [k, v] : headers) {
    out.append(k).append(": ").append(v).append("\r\n");
  }
  if (!keep_alive_) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  session_->QueueWrite(std::move(out), true, keep_alive_);
}

void HttpExchange::StartStream(int status, const std::string& content_type,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  if (responded_.exchange(true)) return;
  std::string out = StatusLine(status);
  out += fmt::format(
      "Content-Type: {}\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\n"
      "Server: kinfer\r\n",
      content_type);
  for (const auto& [k, v] : headers) {
    out.append(k).append(": ").append(v).append("\r\n");
  }
  if (!keep_alive_) out += "Connection: close\r\n";
  out += "\r\n";
  session_->QueueWrite(std::move(out), false, keep_alive_);
}

void HttpExchange::Send(const std::string& data) {
  if (data.empty()) return;
  std::string chunk = fmt::format("{:x}\r\n", data.size());
  chunk += data;
  chunk += "\r\n";
  session_->QueueWrite(std::move(chunk), false, keep_alive_);
}

void HttpExchange::End() { session_->QueueWrite("0\r\n\r\n", true, keep_alive_); }

void HttpExchange::OnClose(std::function<void()> fn) { session_->SetOnClose(std::move(fn)); }

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  net::io_context ioc;
  std::optional<ssl::context> tls;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<int> open{0};
  std::mutex mu;
  std::list<std::weak_ptr<Session>> sessions;
  bool stopped = false;

  void Accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket sock) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        KINFER_LOG_WARN("accept failed: {}", ec.message());
      } else {
        beast::error_code e;
        auto ep = sock.remote_endpoint(e);
        std::string remote = e ? "" : ep.address().to_string() + ":" + std::to_string(ep.port());
        sock.set_option(tcp::no_delay(true), e);
        std::shared_ptr<Session> s;
        if (tls) {
          s = std::make_shared<SessionImpl<beast::ssl_stream<beast::tcp_stream>>>(
              beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(sock)), *tls),
              options, handler, open, remote);
        } else {
          s = std::make_shared<SessionImpl<beast::tcp_stream>>(beast::tcp_stream(std::move(sock)),
                                                               options, handler, open, remote);
        }
        {
          std::lock_guard<std::mutex> lk(mu);
          sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
          sessions.push_back(s);
        }
        s->Start();
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler) : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  Impl& m = *impl_;
  if (!m.options.tls_cert_file.empty() || !m.options.tls_key_file.empty()) {
    if (m.options.tls_cert_file.empty() || m.options.tls_key_file.empty()) {
      return InvalidArgumentError("--ssl-certfile and --ssl-keyfile must be given together");
    }
    m.tls.emplace(ssl::context::tls_server);
    m.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    m.tls->use_certificate_chain_file(m.options.tls_cert_file, ec);
    if (ec) {
      return InvalidArgumentError("--ssl-certfile {}: {}", m.options.tls_cert_file, ec.message());
    }
    m.tls->use_private_key_file(m.options.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      return InvalidArgumentError("--ssl-keyfile {}: {}", m.options.tls_key_file, ec.message());
    }
  }
  beast::error_code ec;
  auto addr = net::ip::make_address(m.options.host, ec);
  if (ec) return InvalidArgumentError("--host {}: not an IP address", m.options.host);
  tcp::endpoint ep(addr, static_cast<unsigned short>(m.options.port));
  m.acceptor.emplace(m.ioc);
  m.acceptor->open(ep.protocol(), ec);
  if (!ec) m.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor->bind(ep, ec);
  if (!ec) m.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on {}:{}: {}", m.options.host, m.options.port,
                            ec.message());
  }
  m.Accept();
  for (int i = 0; i < std::max(1, m.options.io_threads); ++i) {
    m.threads.emplace_back([this] { impl_->ioc.run(); });
    pthread_setname_np(m.threads.back().native_handle(), "kinfer-http");
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    if (m.stopped) return;
    m.stopped = true;
  }
  net::post(m.ioc, [&m] {
    beast::error_code ec;
    if (m.acceptor) m.acceptor->close(ec);
  });
  {
    std::lock_guard<std::mutex> lk(m.mu);
    for (auto& w : m.sessions) {
      if (auto s = w.lock()) s->Close();
    }
  }
  // Give the closes a moment to run, then stop.
  for (int i = 0; i < 50 && m.open.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  m.ioc.stop();
  for (auto& t : m.threads) {
    if (t.joinable()) t.join();
  }
}

int HttpServer::port() const {
  beast::error_code ec;
  if (!impl_->acceptor) return 0;
  return impl_->acceptor->local_endpoint(ec).port();
}

void HttpServer::Post(std::function<void()> fn) { net::post(impl_->ioc, std::move(fn)); }

int HttpServer::open_connections() const { return impl_->open.load(); }

net::io_context& HttpServer::io_context() { return impl_->ioc; }

}  // namespace kinfer::server
