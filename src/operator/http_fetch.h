// Plain-HTTP GETs of many small documents at once, with one deadline for all: how the
// autoscaler reads every router's and engine's /metrics each tick (pod IPs inside the cluster,
// so no TLS and no proxy). libcurl's multi interface underneath; a stop request ends it at once.
//
//   std::vector<FetchResult> r = FetchAll({"http://10.0.0.5:9090/metrics", ...}, {}, stop);
//   if (r[0].ok()) Parse(r[0].body);
#pragma once

#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>
#include <vector>

#include "core/status.h"

namespace kinfer::op {

struct FetchOptions {
  std::chrono::milliseconds timeout{1500};  // for the whole batch
  size_t max_bytes = 8 << 20;               // a longer body fails the fetch
  std::string bearer_token{};               // sent as Authorization when set
};

struct FetchResult {
  Status status;  // transport failure, timeout, too large, or an HTTP status other than 200
  long code = 0;
  std::string body;
  bool ok() const { return status.ok(); }
};

// One result per URL, in order. Never throws; a URL that cannot be fetched gets its reason.
std::vector<FetchResult> FetchAll(const std::vector<std::string>& urls,
                                  const FetchOptions& options = {}, std::stop_token stop = {});

}  // namespace kinfer::op
