#include "server/request_id.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "server/http_server.h"

namespace kinfer::server {

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(int bytes) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string s;
  for (int i = 0; i < bytes; ++i) s += fmt::format("{:02x}", static_cast<unsigned>(rng() & 0xFF));
  return s;
}

std::string RequestId(const HttpExchange& ex) {
  std::string h = ex.header("x-request-id");
  bool ok = !h.empty() && h.size() <= 128;
  for (char c : h) ok = ok && c > 32 && c < 127 && c != '"' && c != '\\';
  return ok ? h : RandomHex(16);
}

}  // namespace kinfer::server
