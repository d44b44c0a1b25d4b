// An open-loop HTTP/1.1 load generator for latency comparisons (bench/router_bench.py): requests
// leave at a fixed rate whatever the server does, and each one's latency runs from when it was
// due to leave until its response is read whole, so a slow server cannot hide its queue
// (coordinated omission). Keep-alive connections, one thread each; plain sockets, no library
// between the measurement and the wire.
//
// With several --url, request i goes to URL i mod N: the paths being compared (direct, through
// a proxy) are measured interleaved, under the same machine load at the same moments, which on
// a shared machine matters more than anything else.
//
//   http_load_bench --url http://127.0.0.1:8000/v1/models --url http://127.0.0.1:8080/v1/models
//                   --body body.json --rate 200 --seconds 10 --connections 8
//
// Prints one JSON object per URL, one per line, in the order given: url, sent, ok (2xx),
// non_2xx, errors, p50/p90/p99/p999/max in microseconds.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 80;
  std::string path = "/";
  std::string body;
  std::string content_type = "application/json";
  double rate = 100;
  double seconds = 10;
  int connections = 8;
  double warmup = 1;  // seconds whose requests are sent but not counted
};

bool ParseUrl(const std::string& url, Options* o) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  size_t slash = rest.find('/');
  o->path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return false;
  o->host = hostport.substr(0, colon);
  o->port = std::atoi(hostport.substr(colon + 1).c_str());
  return o->port > 0;
}

int Connect(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Reads one response (sized or chunked) from fd; returns its status or -1.
int ReadResponse(int fd, std::string& buf) {
  auto fill = [&]() -> bool {
    char tmp[65536];
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  };
  size_t head_end;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return -1;
  }
  std::string head = buf.substr(0, head_end);
  int status = std::atoi(head.c_str() + 9);
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t pos = head_end + 4;
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    while (true) {
      size_t eol;
      while ((eol = buf.find("\r\n", pos)) == std::string::npos) {
        if (!fill()) return -1;
      }
      size_t len = std::strtoul(buf.c_str() + pos, nullptr, 16);
      while (buf.size() < eol + 2 + len + 2) {
        if (!fill()) return -1;
      }
      pos = eol + 2 + len + 2;
      if (len == 0) break;
    }
  } else {
    size_t cl = lower.find("content-length:");
    size_t len = cl == std::string::npos ? 0 : std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
    while (buf.size() < pos + len) {
      if (!fill()) return -1;
    }
    pos += len;
  }
  buf.erase(0, pos);
  return status;
}

}  // namespace

struct Target {
  Options o;
  std::string request;
  std::vector<double> lat;
  int64_t sent = 0, ok = 0, errors = 0, non2xx = 0;
};

int main(int argc, char** argv) {
  Options base;
  std::vector<std::string> urls;
  std::string body_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") {
      urls.push_back(v);
    } else if (k == "--body") {
      body_file = v;
    } else if (k == "--rate") {
      base.rate = std::atof(v.c_str());
    } else if (k == "--seconds") {
      base.seconds = std::atof(v.c_str());
    } else if (k == "--connections") {
      base.connections = std::atoi(v.c_str());
    } else if (k == "--warmup") {
      base.warmup = std::atof(v.c_str());
    } else if (k == "--content-type") {
      base.content_type = v;
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (!body_file.empty()) {
    std::ifstream in(body_file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    base.body = ss.str();
  }
  std::vector<Target> targets(urls.size());
  for (size_t t = 0; t < urls.size(); ++t) {
    targets[t].o = base;
    if (!ParseUrl(urls[t], &targets[t].o)) targets[t].o.port = 0;
  }
  if (targets.empty() ||
      std::any_of(targets.begin(), targets.end(), [](const Target& t) { return t.o.port <= 0; })) {
    std::fprintf(stderr,
                 "usage: http_load_bench --url http://IP:PORT/PATH [--url ...] [--body FILE] "
                 "[--rate R] [--seconds S] [--connections C] [--warmup S]\n");
    return 2;
  }
  for (Target& t : targets) {
    const Options& o = t.o;
    t.request =
        (o.body.empty() ? "GET " : "POST ") + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n";
    if (!o.body.empty()) {
      t.request += "Content-Type: " + o.content_type +
                   "\r\nContent-Length: " + std::to_string(o.body.size()) + "\r\n";
    }
    t.request += "\r\n" + o.body;
  }

  const size_t n = targets.size();
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(100);
  const int64_t total = static_cast<int64_t>(base.rate * (base.seconds + base.warmup));
  const int64_t warm = static_cast<int64_t>(base.rate * base.warmup);
  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int c = 0; c < base.connections; ++c) {
    threads.emplace_back([&] {
      std::vector<int> fds(n, -1);
      std::vector<std::string> bufs(n);
      std::vector<Target> mine(n);
      while (true) {
        const int64_t i = next.fetch_add(1);
        if (i >= total) break;
        const size_t t = static_cast<size_t>(i) % n;
        const Clock::time_point due =
            start + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(i) / base.rate));
        std::this_thread::sleep_until(due);
        int& fd = fds[t];
        if (fd < 0) fd = Connect(targets[t].o);
        int status = -1;
        const std::string& request = targets[t].request;
        if (fd >= 0 && send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                           static_cast<ssize_t>(request.size())) {
          status = ReadResponse(fd, bufs[t]);
        }
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - due).count();
        if (status < 0) {
          if (fd >= 0) close(fd);
          fd = -1;
          bufs[t].clear();
        }
        if (i < warm) continue;
        Target& m = mine[t];
        m.sent++;
        if (status < 0) {
          m.errors++;
          continue;
        }
        if (status >= 200 && status < 300) {
          m.ok++;
        } else {
          m.non2xx++;
        }
        m.lat.push_back(us);
      }
      for (int fd : fds) {
        if (fd >= 0) close(fd);
      }
      std::lock_guard<std::mutex> lk(mu);
      for (size_t t = 0; t < n; ++t) {
        targets[t].lat.insert(targets[t].lat.end(), mine[t].lat.begin(), mine[t].lat.end());
        targets[t].sent += mine[t].sent;
        targets[t].ok += mine[t].ok;
        targets[t].errors += mine[t].errors;
        targets[t].non2xx += mine[t].non2xx;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < n; ++t) {
    std::vector<double>& lat = targets[t].lat;
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double p) {
      if (lat.empty()) return 0.0;
      size_t k = static_cast<size_t>(p * static_cast<double>(lat.size() - 1) + 0.5);
      return lat[std::min(k, lat.size() - 1)];
    };
    std::printf(
        "{\"url\": \"%s\", \"sent\": %lld, \"ok\": %lld, \"non_2xx\": %lld, \"errors\": %lld, "
        "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
        "\"max_us\": %.1f}\n",
        urls[t].c_str(), static_cast<long long>(targets[t].sent),
        static_cast<long long>(targets[t].ok), static_cast<long long>(targets[t].non2xx),
        static_cast<long long>(targets[t].errors), pct(0.5), pct(0.9), pct(0.99), pct(0.999),
        lat.empty() ? 0.0 : lat.back());
  }
  return 0;
}
