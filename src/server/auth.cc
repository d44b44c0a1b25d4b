#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/base64.h"

namespace kinfer::server {
namespace {

std::array<unsigned char, 32> Digest(std::string_view s) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<ApiKeys> ApiKeys::Load(const std::vector<std::string>& keys,
                              const std::vector<std::string>& files) {
  ApiKeys out;
  auto add = [&](const std::string& raw, const std::string& where) -> Status {
    std::string k = Trim(raw);
    if (k.empty()) return Status::Ok();
    if (k.size() < 8)
      return InvalidArgumentError("{}: an API key must have at least 8 characters", where);
    out.digests_.push_back(Digest(k));
    return Status::Ok();
  };
  for (const std::string& k : keys) KINFER_RETURN_IF_ERROR(add(k, "--api-key"));
  if (const char* env = std::getenv("KINFER_API_KEY")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ',')) KINFER_RETURN_IF_ERROR(add(item, "KINFER_API_KEY"));
  }
  for (const std::string& f : files) {
    std::ifstream in(f);
    if (!in) return NotFoundError("--api-key-file {}: cannot read the file", f);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      std::string t = Trim(line);
      if (t.empty() || t[0] == '#') continue;
      KINFER_RETURN_IF_ERROR(add(t, "--api-key-file " + f));
      ++n;
    }
    if (n == 0) return InvalidArgumentError("--api-key-file {}: no key in the file", f);
  }
  return out;
}

bool ApiKeys::Check(std::string_view presented) const {
  const auto d = Digest(presented);
  int match = 0;
  for (const auto& k : digests_) match |= CRYPTO_memcmp(k.data(), d.data(), d.size()) == 0;
  return match != 0;
}

std::string ApiKeys::FromHeaders(const std::string& authorization, const std::string& x_api_key) {
  auto scheme = [&](std::string_view name) {  // "bearer " / "basic ", any case
    if (authorization.size() <= name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(authorization[i])) != name[i]) return false;
    }
    return true;
  };
  if (scheme("bearer ")) return Trim(authorization.substr(7));
  if (scheme("basic ")) {
    // A browser's login prompt (the playground): any user name, the key as the password.
    auto decoded = Base64Decode(Trim(authorization.substr(6)));
    if (decoded) {
      const size_t colon = decoded->find(':');
      if (colon != std::string::npos) return decoded->substr(colon + 1);
    }
  }
  return Trim(x_api_key);
}

}  // namespace kinfer::server
