// Where the Kubernetes API server is and how to prove who we are to it: in-cluster (the pod's
// ServiceAccount token and CA) or a kubeconfig file, as kubectl and client-go find them.
//
//   KINFER_ASSIGN_OR_RETURN(ClientConfig cfg, LoadClientConfig({.kubeconfig = flag_path}));
//   KINFER_ASSIGN_OR_RETURN(auto client, Client::Create(std::move(cfg)));
//
// Lookup order (LoadClientConfig): an explicit kubeconfig path; $KUBECONFIG (':'-separated
// files, merged the way kubectl merges them: the first file to name a cluster, user or context
// wins); in-cluster when KUBERNETES_SERVICE_HOST is set; ~/.kube/config.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace kinfer::k8s {

// A bearer token that is re-read from its file when the file changes (kubelet rotates projected
// ServiceAccount tokens by swapping a symlink), when the token's own `exp` claim has passed, or
// when the server answered 401. Thread-safe.
class TokenSource {
 public:
  // A fixed token (kubeconfig `token:`).
  explicit TokenSource(std::string token);
  // A token file (in-cluster, kubeconfig `tokenFile:`). Reads it once now.
  static Result<std::shared_ptr<TokenSource>> FromFile(std::filesystem::path path);

  // The current token; re-reads the file first when it changed or the token expired.
  Result<std::string> Token();
  // Forces a re-read at the next Token() (after a 401).
  void Invalidate();
  const std::filesystem::path& path() const { return path_; }

 private:
  TokenSource() = default;
  Status ReloadLocked();

  std::mutex mu_;
  std::filesystem::path path_;  // empty: a fixed token
  std::string token_;
  std::optional<std::chrono::system_clock::time_point> expiry_;
  struct FileId {
    uint64_t dev = 0, ino = 0;
    int64_t mtime_ns = 0, size = 0;
    bool operator==(const FileId&) const = default;
  } file_id_;
  bool invalid_ = false;
};

// Everything a Client needs. PEM data is held in memory (files are read when the config is
// loaded, so a later change of the CA file does not surprise a running client).
struct ClientConfig {
  std::string server{};           // "https://10.96.0.1:443"
  std::string ca_pem{};           // empty: the system's CA store
  std::string client_cert_pem{};  // both set: TLS client certificate authentication
  std::string client_key_pem{};
  std::shared_ptr<TokenSource> token{};  // null: no bearer token
  bool insecure_skip_tls_verify = false;
  std::string proxy_url{};                    // kubeconfig `proxy-url`
  std::string default_namespace = "default";  // context namespace, or the pod's namespace
  std::string source{};  // "in-cluster" or "kubeconfig /path (context NAME)", for messages
  std::string user_agent = "kinfer/" KINFER_VERSION;
};

// Fields of one kubeconfig, as written (before files are read). Exposed for tests and the fuzz
// target; LoadKubeconfig is what callers want.
struct Kubeconfig {
  struct Cluster {
    std::string server;
    std::string certificate_authority;       // path
    std::string certificate_authority_data;  // base64 as written
    bool insecure_skip_tls_verify = false;
    std::string proxy_url;
    std::string tls_server_name;
  };
  struct User {
    std::string client_certificate, client_certificate_data;
    std::string client_key, client_key_data;
    std::string token, token_file;
    bool has_exec = false, has_auth_provider = false, has_basic_auth = false;
  };
  struct Context {
    std::string cluster, user, namespace_;
  };
  std::vector<std::pair<std::string, Cluster>> clusters{};  // in file order
  std::vector<std::pair<std::string, User>> users{};
  std::vector<std::pair<std::string, Context>> contexts{};
  std::string current_context{};
};

// Parses kubeconfig YAML. `source` names the file in errors ("~/.kube/config: users[1].user:
// ..."). Refuses what is not a kubeconfig (wrong kind/apiVersion, entries without names, fields
// of the wrong type); never throws.
Result<Kubeconfig> ParseKubeconfig(std::string_view yaml, std::string_view source);

struct LoadOptions {
  std::string kubeconfig{};  // explicit path (a --kubeconfig flag); empty: look it up
  std::string context{};     // empty: current-context
  // kubeconfig `insecure-skip-tls-verify: true` is refused unless this is set (a flag the user
  // typed), since it lets anyone on the path impersonate the API server.
  bool allow_insecure = false;
};

// Builds a ClientConfig from one or more kubeconfig files (merged as kubectl does). Relative
// paths in a file are relative to that file's directory.
Result<ClientConfig> LoadKubeconfig(const std::vector<std::filesystem::path>& files,
                                    const LoadOptions& options);

// The pod's own identity: KUBERNETES_SERVICE_HOST/PORT, and the token, CA and namespace under
// `dir` (/var/run/secrets/kubernetes.io/serviceaccount).
Result<ClientConfig> LoadInClusterConfig(
    const std::filesystem::path& dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// The lookup order in this file's banner.
Result<ClientConfig> LoadClientConfig(const LoadOptions& options);

// base64 (standard alphabet, padding optional, whitespace ignored) as kubeconfig `*-data`
// fields use it. Errors name the field.
Result<std::string> DecodeBase64(std::string_view in, std::string_view what);

}  // namespace kinfer::k8s
