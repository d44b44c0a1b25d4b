#include "server/playground.h"

namespace kinfer::server {

const StaticAsset* FindPlaygroundAsset(std::string_view path) {
  constexpr std::string_view kPrefix = "/playground/";
  std::string_view name;
  if (path == "/" || path == "/index.html") {
    name = "index.html";
  } else if (path.substr(0, kPrefix.size()) == kPrefix) {
    name = path.substr(kPrefix.size());
  } else {
    return nullptr;
  }
  for (const StaticAsset& a : PlaygroundAssets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string PlaygroundBody(const StaticAsset& asset, bool auth_required) {
  std::string body(asset.body);
  if (asset.name == "index.html" && auth_required) {
    constexpr std::string_view kOff = "data-auth=\"off\"";
    if (size_t pos = body.find(kOff); pos != std::string::npos) {
      body.replace(pos, kOff.size(), "data-auth=\"on\"");
    }
  }
  return body;
}

std::vector<std::pair<std::string, std::string>> PlaygroundHeaders() {
  return {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-cache"},
  };
}

}  // namespace kinfer::server
