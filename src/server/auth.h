// API keys: several allowed, from flags, the KINFER_API_KEY environment variable or files with
// one key per line (the form a Kubernetes Secret mounts). Checked in constant time.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kinfer::server {

class ApiKeys {
 public:
  // Keys from `keys`, each file in `files`, and the KINFER_API_KEY variable (comma-separated).
  static Result<ApiKeys> Load(const std::vector<std::string>& keys,
                              const std::vector<std::string>& files);
  bool enabled() const { return !digests_.empty(); }
  size_t size() const { return digests_.size(); }
  // Whether `presented` is one of the keys. Takes the same time whichever key (if any) matches.
  bool Check(std::string_view presented) const;
  // The key from "Authorization: Bearer <key>", "Authorization: Basic" (base64 of "user:<key>",
  // what a browser sends after its login prompt), or "x-api-key"; empty if none.
  static std::string FromHeaders(const std::string& authorization, const std::string& x_api_key);

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
};

}  // namespace kinfer::server
