// What the tests against the real kube-apiserver share: the admin client from the environment
// tests/k8s/cluster.sh exports, a throwaway namespace per test, polling with a deadline, a TCP
// proxy that can cut the client off the API server, and etcd compaction. These tests run in the
// k8s stage (tests/k8s/test_k8s_client.py), never against a mock.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "k8s/client.h"
#include "k8s/config.h"

namespace kinfer::k8s::testing {

inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// The admin identity (client certificate) from $KUBECONFIG.
inline std::unique_ptr<Client> AdminClient() {
  auto cfg = LoadClientConfig({});
  if (!cfg.ok()) {
    ADD_FAILURE() << "KUBECONFIG: " << cfg.status().ToString() << " (run through tests/k8s/run.sh)";
    return nullptr;
  }
  auto c = Client::Create(std::move(*cfg));
  if (!c.ok()) {
    ADD_FAILURE() << c.status().ToString();
    return nullptr;
  }
  return std::move(*c);
}

inline std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  static const char* kAlpha = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 6; ++i) s.push_back(kAlpha[rng() % 36]);
  return s;
}

// Creates a namespace for one test and deletes it afterwards.
class TestNamespace {
 public:
  TestNamespace(Client& c, const std::string& prefix)
      : c_(c), name_(prefix + "-" + RandomSuffix()) {
    auto r = c_.Create(
        kNamespaces, "",
        Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name_}}}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  ~TestNamespace() { (void)c_.Delete(kNamespaces, "", name_); }
  const std::string& name() const { return name_; }

 private:
  Client& c_;
  std::string name_;
};

// Polls `fn` until it is true or `timeout` passes.
inline bool Eventually(const std::function<bool()>& fn,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return fn();
}

inline Json ConfigMap(const std::string& name, const std::string& ns,
                      std::map<std::string, std::string> labels = {},
                      std::map<std::string, std::string> data = {}) {
  Json j = {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", ns}}}};
  if (!labels.empty()) j["metadata"]["labels"] = labels;
  if (!data.empty()) j["data"] = data;
  return j;
}

// A TCP forwarder in front of the API server that a test can cut: Cut() resets every
// connection and refuses new ones until Restore(). It forwards bytes only (TLS is end to end).
class CuttableProxy {
 public:
  CuttableProxy(std::string host, int port) : host_(std::move(host)), port_(port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    local_port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~CuttableProxy() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    Cut();
    for (auto& t : pumps_) t.join();
  }
  int port() const { return local_port_; }
  void Cut() {
    cut_ = true;
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }
  void Restore() { cut_ = false; }

 private:
  void Accept() {
    while (!stop_) {
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) {
        if (stop_) return;
        continue;
      }
      if (cut_) {
        ::close(client);
        continue;
      }
      int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      ::inet_pton(AF_INET, host_.c_str(), &a.sin_addr);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        open_.push_back(client);
        open_.push_back(upstream);
      }
      pumps_.emplace_back([this, client, upstream] { Pump(client, upstream); });
    }
  }
  void Pump(int a, int b) {
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[65536];
    for (;;) {
      if (::poll(fds, 2, 200) < 0) break;
      if (cut_) break;
      bool closed = false;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
          if (n <= 0) {
            closed = true;
            break;
          }
          if (::send(fds[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
            closed = true;
            break;
          }
        }
      }
      if (closed) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : {a, b}) {
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
      open_.erase(std::remove(open_.begin(), open_.end(), fd), open_.end());
    }
  }

  std::string host_;
  int port_;
  int listen_fd_ = -1;
  int local_port_ = 0;
  std::atomic<bool> stop_{false}, cut_{false};
  std::mutex mu_;
  std::vector<int> open_;
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
};

// A client whose connections go through `proxy` (same identity as the admin client).
inline std::unique_ptr<Client> ClientThrough(const CuttableProxy& proxy) {
  auto cfg = LoadClientConfig({});
  if (!cfg.ok()) return nullptr;
  cfg->server = "https://127.0.0.1:" + std::to_string(proxy.port());
  auto c = Client::Create(std::move(*cfg));
  return c.ok() ? std::move(*c) : nullptr;
}

// The API server's port, from its URL in $K8S_API.
inline int ApiPort() {
  std::string api = Env("K8S_API");
  return std::atoi(api.substr(api.rfind(':') + 1).c_str());
}

// etcd's current revision, and a compaction up to it (etcd's v3 HTTP gateway).
inline std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

inline void CompactEtcd() {
  std::string etcd = Env("K8S_ETCD");
  ASSERT_FALSE(etcd.empty()) << "K8S_ETCD is not set (tests/k8s/cluster.sh exports it)";
  auto range = ParseJson(
      Shell("curl -fsS -X POST " + etcd + "/v3/kv/range -d '{\"key\":\"AA==\",\"limit\":1}'"),
      "etcd range");
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  std::string rev = (*range)["header"]["revision"].get<std::string>();
  std::string out = Shell("curl -fsS -X POST " + etcd + "/v3/kv/compaction -d '{\"revision\":\"" +
                          rev + "\",\"physical\":true}'");
  ASSERT_NE(out.find("header"), std::string::npos) << out;
}

}  // namespace kinfer::k8s::testing
