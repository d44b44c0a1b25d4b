// Boost.Beast lives only here (and in server/http_server.cc): it is heavy to compile.
#include "router/upstream.h"

#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace kinfer::router {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<Endpoint> ParseEndpoint(std::string_view url) {
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") {
    return InvalidArgumentError(
        "{}: https to replicas is not supported; use http:// (replicas "
        "are reached inside the cluster, behind a NetworkPolicy)",
        url);
  }
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return InvalidArgumentError(
          "{}: a replica URL takes no path (the router keeps the "
          "request's own)",
          url);
    }
    rest = rest.substr(0, slash);
  }
  Endpoint ep;
  std::string_view port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("{}: unclosed '['", url);
    ep.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return InvalidArgumentError("{}: expected ':PORT' after ']'", url);
      port = rest.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      if (rest.find(':') != colon) {
        return InvalidArgumentError("{}: write an IPv6 address in brackets: http://[::1]:8000",
                                    url);
      }
      port = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    ep.host = std::string(rest);
  }
  if (ep.host.empty()) return InvalidArgumentError("{}: no host", url);
  for (char c : ep.host) {
    if (c <= ' ' || c == '@' || c == '?' || c == '#' || c == '/') {
      return InvalidArgumentError("{}: '{}' is not a host name or address", url, ep.host);
    }
  }
  if (!port.empty()) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535) {
      return InvalidArgumentError("{}: port '{}' is not in 1-65535", url, port);
    }
    ep.port = p;
  }
  return ep;
}

namespace {

bool HopByHop(std::string_view name) {
  static constexpr std::string_view kHop[] = {"connection",
                                              "keep-alive",
                                              "proxy-connection",
                                              "te",
                                              "trailer",
                                              "transfer-encoding",
                                              "upgrade",
                                              "proxy-authenticate",
                                              "proxy-authorization",
                                              "content-length"};
  for (std::string_view h : kHop) {
    if (beast::iequals(beast::string_view(name.data(), name.size()),
                       beast::string_view(h.data(), h.size()))) {
      return true;
    }
  }
  return false;
}

// One TCP connection to a replica, owned by a call while in use and by the pool while idle.
struct Conn {
  explicit Conn(net::any_io_executor ex) : stream(std::move(ex)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::string key;  // the endpoint it goes to
  UpstreamClient::Clock::time_point idle_since;
  uint64_t calls = 0;  // calls it has served
};

}  // namespace

struct UpstreamClient::Impl : std::enable_shared_from_this<UpstreamClient::Impl> {
  Impl(net::io_context& c, UpstreamOptions o) : ioc(c), options(o) {}

  net::io_context& ioc;
  UpstreamOptions options;
  mutable std::mutex mu;
  std::unordered_map<std::string, std::deque<std::shared_ptr<Conn>>> idle;
  size_t idle_count = 0;

  // An idle connection to `key` that has not sat too long, or null.
  std::shared_ptr<Conn> Take(const std::string& key) {
    std::lock_guard<std::mutex> lk(mu);
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    const Clock::time_point now = Clock::now();
    while (!it->second.empty()) {
      std::shared_ptr<Conn> c = std::move(it->second.back());  // most recently used first
      it->second.pop_back();
      --idle_count;
      if (now - c->idle_since < options.idle_timeout) return c;
      CloseLater(c);
    }
    return nullptr;
  }

  // Back to the pool after a complete response; watched so that a replica closing it is noticed.
  void Put(const std::shared_ptr<Conn>& c) {
    {
      std::lock_guard<std::mutex> lk(mu);
      auto& q = idle[c->key];
      if (static_cast<int>(q.size()) >= options.max_idle_per_endpoint) {
        CloseLater(c);
        return;
      }
      c->idle_since = Clock::now();
      q.push_back(c);
      ++idle_count;
    }
    std::weak_ptr<Impl> weak = weak_from_this();
    std::weak_ptr<Conn> wc = c;
    beast::get_lowest_layer(c->stream).expires_never();
    c->stream.socket().async_wait(tcp::socket::wait_read, [weak, wc](beast::error_code ec) {
      if (ec == net::error::operation_aborted) return;  // taken by a call, which cancelled it
      auto self = weak.lock();
      auto conn = wc.lock();
      if (!self || !conn) return;
      // Readable while idle: the replica closed it (or sent bytes nobody asked for).
      std::lock_guard<std::mutex> lk(self->mu);
      auto it = self->idle.find(conn->key);
      if (it == self->idle.end()) return;
      for (auto q = it->second.begin(); q != it->second.end(); ++q) {
        if (*q == conn) {
          it->second.erase(q);
          --self->idle_count;
          beast::error_code ignored;
          conn->stream.socket().close(ignored);
          return;
        }
      }
    });
  }

  static void CloseLater(const std::shared_ptr<Conn>& c) {
    net::post(c->stream.get_executor(), [c] {
      beast::error_code ignored;
      c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      c->stream.socket().close(ignored);
    });
  }

  void Forget(const std::string& key) {
    std::lock_guard<std::mutex> lk(mu);
    auto it = idle.find(key);
    if (it == idle.end()) return;
    for (auto& c : it->second) CloseLater(c);
    idle_count -= it->second.size();
    idle.erase(it);
  }

  void CloseAll() {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& [key, q] : idle) {
      for (auto& c : q) CloseLater(c);
    }
    idle.clear();
    idle_count = 0;
  }
};

namespace {

class Call final : public UpstreamCall, public std::enable_shared_from_this<Call> {
 public:
  Call(std::shared_ptr<UpstreamClient::Impl> client, Endpoint ep,
       std::shared_ptr<const OutgoingRequest> req, CallHandlers handlers,
       UpstreamClient::Clock::time_point deadline)
      : client_(std::move(client)),
        ep_(std::move(ep)),
        key_(ep_.ToString()),
        req_(std::move(req)),
        handlers_(std::move(handlers)),
        deadline_(deadline) {}

  // Picks the connection (and with it the strand every step runs on), then starts.
  void Start() {
    conn_ = client_->Take(key_);
    reused_ = conn_ != nullptr;
    if (!conn_) conn_ = NewConn();
    exec_ = conn_->stream.get_executor();
    net::post(exec_, [self = shared_from_this()] { self->Begin(); });
  }

  void Cancel() override {
    net::post(exec_, [self = shared_from_this()] {
      if (self->finished_) return;
      self->Close();
      self->Finish(CallError::kCancelled, "cancelled");
    });
  }

 private:
  using Clock = UpstreamClient::Clock;

  std::shared_ptr<Conn> NewConn() {
    // A new connection runs on the strand of the call that made it, for its whole life.
    auto c = std::make_shared<Conn>(exec_ ? exec_
                                          : net::any_io_executor(net::make_strand(client_->ioc)));
    c->key = key_;
    return c;
  }

  void Begin() {
    if (finished_) return;
    if (reused_) {
      beast::error_code ignored;
      conn_->stream.socket().cancel(ignored);  // the pool's idle watch
      conn_->calls++;
      return Write();
    }
    Connect();
  }

  void Connect() {
    beast::error_code ec;
    auto addr = net::ip::make_address(ep_.host, ec);
    const Clock::time_point connect_deadline =
        std::min(deadline_, Clock::now() + client_->options.connect_timeout);
    conn_->stream.expires_at(connect_deadline);
    auto self = shared_from_this();
    if (!ec) {
      conn_->stream.async_connect(tcp::endpoint(addr, static_cast<unsigned short>(ep_.port)),
                                  [self](beast::error_code e) { self->OnConnect(e); });
      return;
    }
    resolver_.emplace(exec_);
    resolver_->async_resolve(
        ep_.host, std::to_string(ep_.port),
        [self](beast::error_code e, const tcp::resolver::results_type& results) {
          if (self->finished_) return;
          if (e) {
            return self->Finish(CallError::kConnect,
                                fmt::format("resolving {}: {}", self->ep_.host, e.message()));
          }
          self->conn_->stream.async_connect(
              results, [self](beast::error_code e2, const tcp::endpoint&) { self->OnConnect(e2); });
        });
  }

  void OnConnect(beast::error_code ec) {
    if (finished_) return;
    if (ec) {
      Close();
      return Finish(CallError::kConnect,
                    fmt::format("connecting to {}: {}", key_,
                                ec == beast::error::timeout ? "timed out" : ec.message()));
    }
    beast::error_code ignored;
    conn_->stream.socket().set_option(tcp::no_delay(true), ignored);
    conn_->calls = 1;
    Write();
  }

  void Write() {
    head_ = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", req_->method, req_->target, key_);
    for (const auto& [k, v] : req_->headers) head_.append(k).append(": ").append(v).append("\r\n");
    const size_t body_size = req_->body ? req_->body->size() : 0;
    if (body_size > 0 || req_->method == "POST" || req_->method == "PUT") {
      head_ += fmt::format("Content-Length: {}\r\n", body_size);
    }
    head_ += "\r\n";
    std::array<net::const_buffer, 2> bufs{
        net::buffer(head_), req_->body ? net::buffer(*req_->body) : net::const_buffer()};
    conn_->stream.expires_at(deadline_);
    net::async_write(
        conn_->stream, bufs,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (finished_) return;
    if (ec) {
      if (RetryFresh(ec)) return;
      Close();
      return Finish(ec == beast::error::timeout ? CallError::kTimeout : CallError::kReset,
                    fmt::format("sending to {}: {}", key_, ec.message()));
    }
    parser_.emplace();
    // Unlimited (boost::none trips a comparison bug in Boost 1.74: any length "exceeds" it).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_->header_limit(64 * 1024);
    if (req_->method == "HEAD") parser_->skip(true);
    http::async_read_header(
        conn_->stream, conn_->buffer, *parser_,
        [self = shared_from_this()](beast::error_code e, size_t) { self->OnHead(e); });
  }

  // A pooled connection the replica had closed: no byte of an answer came back, so the
  // request was not taken. Once per call, on a fresh connection.
  bool RetryFresh(beast::error_code ec) {
    const bool closed = ec == http::error::end_of_stream || ec == net::error::eof ||
                        ec == net::error::connection_reset || ec == net::error::broken_pipe;
    if (!reused_ || !closed || head_received_) return false;
    reused_ = false;
    Close();
    conn_ = NewConn();
    Connect();
    return true;
  }

  void OnHead(beast::error_code ec) {
    if (finished_) return;
    if (ec) {
      if (RetryFresh(ec)) return;
      Close();
      if (ec == beast::error::timeout) {
        return Finish(CallError::kTimeout,
                      fmt::format("{}: no response before the deadline", key_));
      }
      const bool closed = ec == http::error::end_of_stream || ec == net::error::eof ||
                          ec == net::error::connection_reset || ec == http::error::partial_message;
      return Finish(closed ? CallError::kReset : CallError::kProtocol,
                    fmt::format("reading the response of {}: {}", key_, ec.message()));
    }
    head_received_ = true;
    auto& msg = parser_->get();
    ResponseHead head;
    head.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      std::string name(f.name_string());
      if (HopByHop(name)) continue;
      if (beast::iequals(name, "content-type")) {
        head.content_type = std::string(f.value());
        continue;
      }
      head.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    head.streamed = parser_->chunked() || (!parser_->content_length() && !parser_->is_done());
    if (handlers_.on_head) handlers_.on_head(std::move(head));
    if (finished_) return;  // the handler cancelled
    if (parser_->is_done()) return Complete();
    ReadBody();
  }

  void ReadBody() {
    auto& body = parser_->get().body();
    body.data = buf_.data();
    body.size = buf_.size();
    conn_->stream.expires_after(client_->options.read_timeout);
    http::async_read_some(
        conn_->stream, conn_->buffer, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (finished_) return;
    const size_t got = buf_.size() - parser_->get().body().size;
    if (got > 0) {
      body_bytes_ += got;
      if (handlers_.on_body) handlers_.on_body(std::string_view(buf_.data(), got));
      if (finished_) return;
    }
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      Close();
      return Finish(ec == beast::error::timeout ? CallError::kTimeout : CallError::kReset,
                    fmt::format("reading the body from {}: {}", key_, ec.message()));
    }
    if (parser_->is_done()) return Complete();
    ReadBody();
  }

  void Complete() {
    const bool keep = parser_->keep_alive();
    parser_.reset();
    if (keep) {
      client_->Put(conn_);
    } else {
      Close();
    }
    conn_.reset();
    Finish(CallError::kNone, "");
  }

  void Close() {
    if (!conn_) return;
    beast::error_code ignored;
    conn_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    conn_->stream.socket().close(ignored);
  }

  void Finish(CallError error, std::string message) {
    if (finished_) return;
    finished_ = true;
    CallResult r;
    r.error = error;
    r.message = std::move(message);
    r.head_received = head_received_;
    r.body_bytes = body_bytes_;
    CallHandlers h = std::move(handlers_);
    handlers_ = {};
    if (h.on_done) h.on_done(r);
  }

  std::shared_ptr<UpstreamClient::Impl> client_;
  Endpoint ep_;
  std::string key_;
  std::shared_ptr<const OutgoingRequest> req_;
  CallHandlers handlers_;
  Clock::time_point deadline_;
  net::any_io_executor exec_;
  std::shared_ptr<Conn> conn_;
  std::optional<tcp::resolver> resolver_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::string head_;
  std::array<char, 16384> buf_{};
  bool reused_ = false;
  bool head_received_ = false;
  bool finished_ = false;
  uint64_t body_bytes_ = 0;
};

}  // namespace

UpstreamClient::UpstreamClient(net::io_context& ioc, UpstreamOptions options)
    : impl_(std::make_shared<Impl>(ioc, options)) {}

UpstreamClient::~UpstreamClient() { impl_->CloseAll(); }

std::shared_ptr<UpstreamCall> UpstreamClient::Start(const Endpoint& endpoint,
                                                    std::shared_ptr<const OutgoingRequest> request,
                                                    CallHandlers handlers,
                                                    Clock::time_point deadline) {
  auto call =
      std::make_shared<Call>(impl_, endpoint, std::move(request), std::move(handlers), deadline);
  call->Start();
  return call;
}

void UpstreamClient::Get(const Endpoint& endpoint, const std::string& target,
                         const HeaderList& headers, Clock::duration timeout, size_t max_body,
                         std::function<void(Result<SimpleResponse>)> done) {
  auto req = std::make_shared<OutgoingRequest>();
  req->method = "GET";
  req->target = target;
  req->headers = headers;
  struct State {
    SimpleResponse resp;
    bool too_big = false;
    std::function<void(Result<SimpleResponse>)> done;
  };
  auto st = std::make_shared<State>();
  st->done = std::move(done);
  CallHandlers h;
  h.on_head = [st](const ResponseHead& head) { st->resp.status = head.status; };
  h.on_body = [st, max_body](std::string_view bytes) {
    if (st->too_big || st->resp.body.size() + bytes.size() > max_body) {
      st->too_big = true;  // read on to the end, keeping nothing: the connection stays usable
      return;
    }
    st->resp.body.append(bytes);
  };
  h.on_done = [st, target, endpoint, max_body](const CallResult& r) {
    if (st->too_big) {
      return st->done(ResourceExhaustedError("{}{}: the response is larger than {} bytes",
                                             endpoint.ToString(), target, max_body));
    }
    if (r.error == CallError::kConnect) {
      return st->done(UnavailableError("{}{}: {}", endpoint.ToString(), target, r.message));
    }
    if (r.error == CallError::kTimeout) {
      return st->done(DeadlineExceededError("{}{}: {}", endpoint.ToString(), target, r.message));
    }
    if (r.error != CallError::kNone) {
      return st->done(AbortedError("{}{}: {}", endpoint.ToString(), target, r.message));
    }
    st->done(std::move(st->resp));
  };
  Start(endpoint, std::move(req), std::move(h), Clock::now() + timeout);
}

void UpstreamClient::Forget(const Endpoint& endpoint) { impl_->Forget(endpoint.ToString()); }

void UpstreamClient::CloseIdle() { impl_->CloseAll(); }

size_t UpstreamClient::idle_connections() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->idle_count;
}

}  // namespace kinfer::router
