// Small helpers the server and the router share to name requests and stamp them.
#pragma once

#include <cstdint>
#include <string>

namespace kinfer::server {

class HttpExchange;

// Seconds since the Unix epoch (the `created` of OpenAI objects, the `time` of log lines).
int64_t UnixNow();
// `bytes` random bytes as lowercase hex; not for secrets.
std::string RandomHex(int bytes);
// The request's X-Request-Id when it is short and printable, else a fresh random one.
std::string RequestId(const HttpExchange& ex);

}  // namespace kinfer::server
