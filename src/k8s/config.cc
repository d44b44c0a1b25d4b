#include "k8s/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "core/json.h"

namespace kinfer::k8s {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxConfigBytes = 16 << 20;

Result<std::string> ReadSmallFile(const fs::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return NotFoundError("{}: cannot read {} ({})", path.string(), what, std::strerror(errno));
  }
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxConfigBytes) {
      return InvalidArgumentError("{}: {} is larger than 16 MiB", path.string(), what);
    }
  }
  return data;
}

// The `exp` claim of a JWT, when the token is one and has it.
std::optional<std::chrono::system_clock::time_point> JwtExpiry(std::string_view token) {
  size_t a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::string payload(token.substr(a + 1, b - a - 1));
  for (char& c : payload) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  auto decoded = DecodeBase64(payload, "token");
  if (!decoded.ok()) return std::nullopt;
  auto json = ParseJson(*decoded, "token payload");
  if (!json.ok() || !json->is_object()) return std::nullopt;
  auto it = json->find("exp");
  if (it == json->end() || !it->is_number()) return std::nullopt;
  return std::chrono::system_clock::time_point(
      std::chrono::seconds(static_cast<int64_t>(it->get<double>())));
}

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// --- kubeconfig YAML -------------------------------------------------------------------------

// Reads one YAML node into a kubeconfig field. yaml-cpp reports problems by throwing; every
// throw stays inside ParseKubeconfig.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  Status Fail(const std::string& path, std::string_view what) const {
    return InvalidArgumentError("{}: {}: {}", source_, path, what);
  }

  // A scalar string; a missing or null node gives "".
  Result<std::string> String(const YAML::Node& parent, const char* key,
                             const std::string& path) const {
    YAML::Node n = parent[key];
    if (!n || n.IsNull()) return std::string();
    if (!n.IsScalar()) return Fail(path + "." + key, "expected a string");
    return n.Scalar();
  }

  Result<bool> Bool(const YAML::Node& parent, const char* key, const std::string& path) const {
    YAML::Node n = parent[key];
    if (!n || n.IsNull()) return false;
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    return Fail(path + "." + key, "expected true or false");
  }

  // A list of {name: ..., <field>: {...}} entries; calls fn(name, body, path) for each.
  template <typename Fn>
  Status NamedList(const YAML::Node& root, const char* key, const char* field, Fn fn) const {
    YAML::Node list = root[key];
    if (!list || list.IsNull()) return Status::Ok();
    if (!list.IsSequence()) return Fail(key, "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string path = fmt::format("{}[{}]", key, i);
      const YAML::Node& entry = list[i];
      if (!entry.IsMap())
        return Fail(path, "expected a mapping with name and " + std::string(field));
      KINFER_ASSIGN_OR_RETURN(std::string name, String(entry, "name", path));
      if (name.empty()) return Fail(path, "entry has no name");
      YAML::Node body = entry[field];
      if (body && !body.IsNull() && !body.IsMap()) {
        return Fail(path + "." + field, "expected a mapping");
      }
      KINFER_RETURN_IF_ERROR(
          fn(name, body ? body : YAML::Node(YAML::NodeType::Map), path + "." + field));
    }
    return Status::Ok();
  }

 private:
  std::string source_;
};

Result<Kubeconfig> ParseKubeconfigUnsafe(std::string_view yaml, std::string_view source) {
  Reader r(source);
  YAML::Node root = YAML::Load(std::string(yaml));
  Kubeconfig kc;
  if (!root || root.IsNull()) return kc;  // an empty file is an empty config, as for kubectl
  if (!root.IsMap()) return r.Fail("(top level)", "expected a mapping (is this a kubeconfig?)");
  KINFER_ASSIGN_OR_RETURN(std::string kind, r.String(root, "kind", ""));
  if (!kind.empty() && kind != "Config") {
    return InvalidArgumentError("{}: kind is '{}', expected Config", source, kind);
  }
  KINFER_ASSIGN_OR_RETURN(std::string api_version, r.String(root, "apiVersion", ""));
  if (!api_version.empty() && api_version != "v1") {
    return InvalidArgumentError("{}: apiVersion is '{}', expected v1", source, api_version);
  }
  KINFER_ASSIGN_OR_RETURN(kc.current_context, r.String(root, "current-context", ""));

  KINFER_RETURN_IF_ERROR(r.NamedList(
      root, "clusters", "cluster",
      [&](const std::string& name, const YAML::Node& c, const std::string& p) -> Status {
        Kubeconfig::Cluster cl;
        KINFER_ASSIGN_OR_RETURN(cl.server, r.String(c, "server", p));
        KINFER_ASSIGN_OR_RETURN(cl.certificate_authority, r.String(c, "certificate-authority", p));
        KINFER_ASSIGN_OR_RETURN(cl.certificate_authority_data,
                                r.String(c, "certificate-authority-data", p));
        KINFER_ASSIGN_OR_RETURN(cl.insecure_skip_tls_verify,
                                r.Bool(c, "insecure-skip-tls-verify", p));
        KINFER_ASSIGN_OR_RETURN(cl.proxy_url, r.String(c, "proxy-url", p));
        KINFER_ASSIGN_OR_RETURN(cl.tls_server_name, r.String(c, "tls-server-name", p));
        kc.clusters.emplace_back(name, std::move(cl));
        return Status::Ok();
      }));
  KINFER_RETURN_IF_ERROR(r.NamedList(
      root, "users", "user",
      [&](const std::string& name, const YAML::Node& u, const std::string& p) -> Status {
        Kubeconfig::User us;
        KINFER_ASSIGN_OR_RETURN(us.client_certificate, r.String(u, "client-certificate", p));
        KINFER_ASSIGN_OR_RETURN(us.client_certificate_data,
                                r.String(u, "client-certificate-data", p));
        KINFER_ASSIGN_OR_RETURN(us.client_key, r.String(u, "client-key", p));
        KINFER_ASSIGN_OR_RETURN(us.client_key_data, r.String(u, "client-key-data", p));
        KINFER_ASSIGN_OR_RETURN(us.token, r.String(u, "token", p));
        KINFER_ASSIGN_OR_RETURN(us.token_file, r.String(u, "tokenFile", p));
        us.has_exec = u["exec"] && !u["exec"].IsNull();
        us.has_auth_provider = u["auth-provider"] && !u["auth-provider"].IsNull();
        us.has_basic_auth = (u["username"] && !u["username"].IsNull()) ||
                            (u["password"] && !u["password"].IsNull());
        kc.users.emplace_back(name, std::move(us));
        return Status::Ok();
      }));
  KINFER_RETURN_IF_ERROR(r.NamedList(
      root, "contexts", "context",
      [&](const std::string& name, const YAML::Node& c, const std::string& p) -> Status {
        Kubeconfig::Context cx;
        KINFER_ASSIGN_OR_RETURN(cx.cluster, r.String(c, "cluster", p));
        KINFER_ASSIGN_OR_RETURN(cx.user, r.String(c, "user", p));
        KINFER_ASSIGN_OR_RETURN(cx.namespace_, r.String(c, "namespace", p));
        kc.contexts.emplace_back(name, std::move(cx));
        return Status::Ok();
      }));
  return kc;
}

// A kubeconfig entry and the directory its relative paths are relative to.
template <typename T>
struct Located {
  T value;
  fs::path dir;
};

fs::path Resolve(const std::string& p, const fs::path& dir) {
  fs::path path(p);
  if (!p.empty() && p[0] == '~') {
    const char* home = std::getenv("HOME");
    if (home != nullptr) path = fs::path(home) / p.substr(p.size() > 1 && p[1] == '/' ? 2 : 1);
  }
  return path.is_absolute() ? path : dir / path;
}

// PEM from a `*-data` field (base64) or a file path, whichever is set.
Result<std::string> PemFrom(const std::string& data, const std::string& file, const fs::path& dir,
                            std::string_view field, std::string_view entry) {
  if (!data.empty()) {
    auto decoded = DecodeBase64(data, fmt::format("{}: {}-data", entry, field));
    if (!decoded.ok()) return decoded.status();
    return decoded;
  }
  if (!file.empty()) {
    auto content = ReadSmallFile(Resolve(file, dir), fmt::format("{}: {}", entry, field));
    if (!content.ok()) return content.status();
    return content;
  }
  return std::string();
}

}  // namespace

// --- TokenSource -----------------------------------------------------------------------------

TokenSource::TokenSource(std::string token) : token_(Trim(std::move(token))) {
  expiry_ = JwtExpiry(token_);
}

Result<std::shared_ptr<TokenSource>> TokenSource::FromFile(std::filesystem::path path) {
  std::shared_ptr<TokenSource> ts(new TokenSource());
  ts->path_ = std::move(path);
  std::lock_guard<std::mutex> lock(ts->mu_);
  KINFER_RETURN_IF_ERROR(ts->ReloadLocked());
  return ts;
}

Status TokenSource::ReloadLocked() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return NotFoundError("{}: cannot read the token file ({})", path_.string(),
                         std::strerror(errno));
  }
  KINFER_ASSIGN_OR_RETURN(std::string data, ReadSmallFile(path_, "token file"));
  std::string token = Trim(std::move(data));
  if (token.empty()) return InvalidArgumentError("{}: the token file is empty", path_.string());
  token_ = std::move(token);
  expiry_ = JwtExpiry(token_);
  file_id_ = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
              static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
              static_cast<int64_t>(st.st_size)};
  invalid_ = false;
  return Status::Ok();
}

Result<std::string> TokenSource::Token() {
  std::lock_guard<std::mutex> lock(mu_);
  if (path_.empty()) return token_;
  bool reload = invalid_ || (expiry_ && *expiry_ <= std::chrono::system_clock::now());
  if (!reload) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
      FileId now{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                 static_cast<int64_t>(st.st_size)};
      reload = !(now == file_id_);
    }
  }
  if (reload) {
    Status s = ReloadLocked();
    // Keep the old token when the file is briefly missing during a rotation; the server says
    // whether it still works.
    if (!s.ok() && token_.empty()) return s;
  }
  return token_;
}

void TokenSource::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  invalid_ = true;
}

// --- base64 ----------------------------------------------------------------------------------

Result<std::string> DecodeBase64(std::string_view in, std::string_view what) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding) {
      return InvalidArgumentError("{}: not base64 (character {} at offset {})", what,
                                  v < 0 ? fmt::format("'{}'", c) : std::string("after '='"), i);
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6) return InvalidArgumentError("{}: not base64 (truncated)", what);
  return out;
}

// --- kubeconfig ------------------------------------------------------------------------------

Result<Kubeconfig> ParseKubeconfig(std::string_view yaml, std::string_view source) {
  if (yaml.size() > kMaxConfigBytes) {
    return InvalidArgumentError("{}: larger than 16 MiB; not a kubeconfig", source);
  }
  try {
    return ParseKubeconfigUnsafe(yaml, source);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("{}: line {}, column {}: {}", source, e.mark.line + 1,
                                e.mark.column + 1, e.msg);
  } catch (const std::exception& e) {
    return InvalidArgumentError("{}: {}", source, e.what());
  }
}

Result<ClientConfig> LoadKubeconfig(const std::vector<std::filesystem::path>& files,
                                    const LoadOptions& options) {
  std::map<std::string, Located<Kubeconfig::Cluster>> clusters;
  std::map<std::string, Located<Kubeconfig::User>> users;
  std::map<std::string, Located<Kubeconfig::Context>> contexts;
  std::string current;
  std::vector<std::string> read;
  for (const fs::path& f : files) {
    std::error_code ec;
    if (files.size() > 1 && !fs::exists(f, ec)) continue;  // as kubectl: missing entries skipped
    KINFER_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(f, "kubeconfig"));
    KINFER_ASSIGN_OR_RETURN(Kubeconfig kc, ParseKubeconfig(text, f.string()));
    fs::path dir = f.has_parent_path() ? f.parent_path() : fs::path(".");
    for (auto& [n, c] : kc.clusters) clusters.try_emplace(n, Located<Kubeconfig::Cluster>{c, dir});
    for (auto& [n, u] : kc.users) users.try_emplace(n, Located<Kubeconfig::User>{u, dir});
    for (auto& [n, c] : kc.contexts) contexts.try_emplace(n, Located<Kubeconfig::Context>{c, dir});
    if (current.empty()) current = kc.current_context;
    read.push_back(f.string());
  }
  if (read.empty()) return NotFoundError("no kubeconfig file found");
  std::string files_desc = fmt::format("{}", fmt::join(read, ":"));

  std::string ctx_name = options.context.empty() ? current : options.context;
  if (ctx_name.empty()) {
    return InvalidArgumentError("{}: no current-context is set; name one with --context",
                                files_desc);
  }
  auto ctx = contexts.find(ctx_name);
  if (ctx == contexts.end()) {
    return NotFoundError("{}: context '{}' is not defined", files_desc, ctx_name);
  }
  const Kubeconfig::Context& cx = ctx->second.value;
  auto cl = clusters.find(cx.cluster);
  if (cl == clusters.end()) {
    return NotFoundError("{}: context '{}' names cluster '{}', which is not defined", files_desc,
                         ctx_name, cx.cluster);
  }
  const Kubeconfig::Cluster& c = cl->second.value;
  std::string cluster_entry = fmt::format("{}: cluster '{}'", files_desc, cx.cluster);
  if (c.server.empty()) return InvalidArgumentError("{}: no server", cluster_entry);
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0) {
    return InvalidArgumentError("{}: server '{}' is not an http(s) URL", cluster_entry, c.server);
  }
  if (!c.tls_server_name.empty()) {
    return UnimplementedError(
        "{}: tls-server-name is not supported; point server at a name the "
        "certificate holds",
        cluster_entry);
  }

  ClientConfig cfg;
  cfg.server = c.server;
  while (cfg.server.size() > 1 && cfg.server.back() == '/') cfg.server.pop_back();
  cfg.proxy_url = c.proxy_url;
  cfg.source = fmt::format("kubeconfig {} (context {})", files_desc, ctx_name);
  if (!cx.namespace_.empty()) cfg.default_namespace = cx.namespace_;
  if (c.insecure_skip_tls_verify) {
    if (!options.allow_insecure) {
      return PermissionDeniedError(
          "{}: insecure-skip-tls-verify is set; refusing to talk to an API server whose "
          "certificate is not checked (pass --insecure-skip-tls-verify to allow it)",
          cluster_entry);
    }
    cfg.insecure_skip_tls_verify = true;
  } else {
    KINFER_ASSIGN_OR_RETURN(
        cfg.ca_pem, PemFrom(c.certificate_authority_data, c.certificate_authority, cl->second.dir,
                            "certificate-authority", cluster_entry));
  }

  if (!cx.user.empty()) {
    auto us = users.find(cx.user);
    if (us == users.end()) {
      return NotFoundError("{}: context '{}' names user '{}', which is not defined", files_desc,
                           ctx_name, cx.user);
    }
    const Kubeconfig::User& u = us->second.value;
    std::string user_entry = fmt::format("{}: user '{}'", files_desc, cx.user);
    if (u.has_exec) {
      return UnimplementedError(
          "{}: exec credential plugins are not supported; give this user a token, tokenFile or "
          "client certificate",
          user_entry);
    }
    if (u.has_auth_provider) {
      return UnimplementedError("{}: auth-provider plugins are not supported", user_entry);
    }
    if (u.has_basic_auth) {
      return UnimplementedError(
          "{}: username/password (basic auth) was removed from Kubernetes in 1.19", user_entry);
    }
    KINFER_ASSIGN_OR_RETURN(cfg.client_cert_pem,
                            PemFrom(u.client_certificate_data, u.client_certificate, us->second.dir,
                                    "client-certificate", user_entry));
    KINFER_ASSIGN_OR_RETURN(cfg.client_key_pem, PemFrom(u.client_key_data, u.client_key,
                                                        us->second.dir, "client-key", user_entry));
    if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
      return InvalidArgumentError(
          "{}: a client certificate needs its key, and a key its "
          "certificate",
          user_entry);
    }
    if (!u.token.empty()) {
      cfg.token = std::make_shared<TokenSource>(u.token);
    } else if (!u.token_file.empty()) {
      KINFER_ASSIGN_OR_RETURN(cfg.token,
                              TokenSource::FromFile(Resolve(u.token_file, us->second.dir)));
    }
  }
  return cfg;
}

Result<ClientConfig> LoadInClusterConfig(const std::filesystem::path& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
        "set");
  }
  ClientConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // an IPv6 address
  cfg.server = fmt::format("https://{}:{}", h, port);
  cfg.source = fmt::format("in-cluster ({})", dir.string());
  KINFER_ASSIGN_OR_RETURN(cfg.token, TokenSource::FromFile(dir / "token"));
  KINFER_ASSIGN_OR_RETURN(cfg.ca_pem, ReadSmallFile(dir / "ca.crt", "the cluster's CA"));
  auto ns = ReadSmallFile(dir / "namespace", "namespace");
  if (ns.ok() && !Trim(*ns).empty()) cfg.default_namespace = Trim(*ns);
  return cfg;
}

Result<ClientConfig> LoadClientConfig(const LoadOptions& options) {
  if (!options.kubeconfig.empty()) return LoadKubeconfig({options.kubeconfig}, options);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    std::vector<fs::path> files;
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) {
      if (!item.empty()) files.emplace_back(item);
    }
    if (!files.empty()) return LoadKubeconfig(files, options);
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') return LoadInClusterConfig();
  const char* home = std::getenv("HOME");
  if (home != nullptr) {
    fs::path p = fs::path(home) / ".kube" / "config";
    std::error_code ec;
    if (fs::exists(p, ec)) return LoadKubeconfig({p}, options);
  }
  return NotFoundError(
      "no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST unset), no "
      "$KUBECONFIG, no ~/.kube/config; pass --kubeconfig");
}

}  // namespace kinfer::k8s
