// Kubeconfig and in-cluster configuration. The reference is kubectl/client-go's behaviour
// (k8s.io/client-go/tools/clientcmd): merge order of $KUBECONFIG files, paths relative to the
// file that names them, current-context, and the ServiceAccount files of a pod.
#include "k8s/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace kinfer::k8s {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kinfer-k8s-config-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path Write(const std::string& name, const std::string& content) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return p;
  }

 private:
  fs::path path_;
};

// "hello" and "world" in base64.
constexpr const char* kHelloB64 = "aGVsbG8=";

std::string KindStyleConfig() {
  // The layout kind and kubeadm write: certificates inline as base64.
  return R"(apiVersion: v1
kind: Config
preferences: {}
current-context: kind-kinfer
clusters:
- cluster:
    certificate-authority-data: aGVsbG8=
    server: https://127.0.0.1:36443
  name: kind-kinfer
contexts:
- context:
    cluster: kind-kinfer
    user: kind-kinfer
    namespace: llm
  name: kind-kinfer
users:
- name: kind-kinfer
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
)";
}

TEST(Kubeconfig, ReadsInlineCertificatesAndTheContextNamespace) {
  TempDir d;
  fs::path f = d.Write("config", KindStyleConfig());
  auto cfg = LoadKubeconfig({f}, {});
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:36443");
  EXPECT_EQ(cfg->ca_pem, "hello");
  EXPECT_EQ(cfg->client_cert_pem, "cert");
  EXPECT_EQ(cfg->client_key_pem, "key");
  EXPECT_EQ(cfg->default_namespace, "llm");
  EXPECT_EQ(cfg->token, nullptr);
  EXPECT_NE(cfg->source.find("context kind-kinfer"), std::string::npos) << cfg->source;
}

TEST(Kubeconfig, ResolvesFilePathsRelativeToTheKubeconfig) {
  // clientcmd resolves relative paths against the directory of the file that holds them.
  TempDir d;
  d.Write("pki/ca.crt", "CA PEM");
  d.Write("pki/admin.crt", "CERT PEM");
  d.Write("pki/admin.key", "KEY PEM");
  fs::path f = d.Write("kube/../config", R"(apiVersion: v1
kind: Config
current-context: test
clusters:
- name: test
  cluster: {server: "https://10.0.0.1:6443/", certificate-authority: pki/ca.crt}
users:
- name: admin
  user: {client-certificate: pki/admin.crt, client-key: pki/admin.key}
contexts:
- name: test
  context: {cluster: test, user: admin}
)");
  auto cfg = LoadKubeconfig({f}, {});
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");  // the trailing slash goes
  EXPECT_EQ(cfg->ca_pem, "CA PEM");
  EXPECT_EQ(cfg->client_cert_pem, "CERT PEM");
  EXPECT_EQ(cfg->client_key_pem, "KEY PEM");
  EXPECT_EQ(cfg->default_namespace, "default");
}

TEST(Kubeconfig, MergesFilesFirstWinsLikeKubectl) {
  TempDir d;
  fs::path a = d.Write("a", R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://first:443", certificate-authority-data: aGVsbG8=}
users:
- name: u
  user: {token: first-token}
)");
  fs::path b = d.Write("b", R"(apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c
  cluster: {server: "https://second:443"}
users:
- name: u
  user: {token: second-token}
contexts:
- name: ctx
  context: {cluster: c, user: u}
)");
  auto cfg = LoadKubeconfig({a, d.path() / "missing", b}, {});
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://first:443");
  ASSERT_NE(cfg->token, nullptr);
  EXPECT_EQ(*cfg->token->Token(), "first-token");
}

TEST(Kubeconfig, AnExplicitContextOverridesCurrentContext) {
  TempDir d;
  fs::path f = d.Write("config", KindStyleConfig() + R"(
)");
  std::string two = R"(apiVersion: v1
kind: Config
current-context: one
clusters:
- {name: c1, cluster: {server: "https://one:443"}}
- {name: c2, cluster: {server: "https://two:443"}}
contexts:
- {name: one, context: {cluster: c1}}
- {name: two, context: {cluster: c2, namespace: ns2}}
)";
  fs::path g = d.Write("two", two);
  auto cfg = LoadKubeconfig({g}, {.context = "two"});
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://two:443");
  EXPECT_EQ(cfg->default_namespace, "ns2");
  auto missing = LoadKubeconfig({g}, {.context = "three"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("context 'three' is not defined"), std::string::npos);
}

TEST(Kubeconfig, RefusesInsecureSkipTlsVerifyUnlessAsked) {
  TempDir d;
  fs::path f = d.Write("config", R"(apiVersion: v1
kind: Config
current-context: x
clusters:
- {name: c, cluster: {server: "https://x:443", insecure-skip-tls-verify: true}}
contexts:
- {name: x, context: {cluster: c}}
)");
  auto refused = LoadKubeconfig({f}, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("insecure-skip-tls-verify"), std::string::npos);
  EXPECT_NE(refused.status().message().find("cluster 'c'"), std::string::npos);
  auto allowed = LoadKubeconfig({f}, {.allow_insecure = true});
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_TRUE(allowed->insecure_skip_tls_verify);
}

TEST(Kubeconfig, RefusesCredentialPluginsAndBasicAuthWithAReason) {
  TempDir d;
  struct Case {
    const char* user;
    const char* says;
  } cases[] = {
      {"{exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}", "exec credential"},
      {"{auth-provider: {name: gcp}}", "auth-provider"},
      {"{username: admin, password: secret}", "basic auth"},
  };
  for (const Case& c : cases) {
    fs::path f = d.Write("config", fmt::format(R"(apiVersion: v1
kind: Config
current-context: x
clusters:
- {{name: c, cluster: {{server: "https://x:443"}}}}
users:
- {{name: u, user: {}}}
contexts:
- {{name: x, context: {{cluster: c, user: u}}}}
)",
                                               c.user));
    auto r = LoadKubeconfig({f}, {});
    ASSERT_FALSE(r.ok()) << c.user;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("user 'u'"), std::string::npos) << r.status().message();
  }
}

TEST(Kubeconfig, ErrorsNameTheFileAndTheField) {
  struct Case {
    const char* yaml;
    const char* says;
  } cases[] = {
      {"kind: Pod\n", "kind is 'Pod', expected Config"},
      {"apiVersion: v2\nkind: Config\n", "apiVersion is 'v2'"},
      {"- a\n- b\n", "expected a mapping"},
      {"clusters: {a: b}\n", "clusters: expected a list"},
      {"clusters:\n- cluster: {server: x}\n", "clusters[0]: entry has no name"},
      {"users:\n- name: u\n  user: [1, 2]\n", "users[0].user: expected a mapping"},
      {"clusters:\n- name: c\n  cluster: {server: [1]}\n",
       "clusters[0].cluster.server: expected a string"},
      {"clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: maybe}\n",
       "clusters[0].cluster.insecure-skip-tls-verify: expected true or false"},
      {"clusters: [\n", "line "},
      {"a: b\n  c: d\n", "line 2"},
  };
  for (const Case& c : cases) {
    auto r = ParseKubeconfig(c.yaml, "/etc/kube.conf");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("/etc/kube.conf"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
  }
}

TEST(Kubeconfig, AnEmptyFileIsAnEmptyConfig) {
  auto r = ParseKubeconfig("", "empty");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->clusters.empty());
  TempDir d;
  fs::path f = d.Write("config", "");
  auto cfg = LoadKubeconfig({f}, {});
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("no current-context"), std::string::npos);
}

TEST(Kubeconfig, BadBase64AndHalfACertificateAreRefused) {
  TempDir d;
  fs::path f = d.Write("config", R"(apiVersion: v1
kind: Config
current-context: x
clusters:
- {name: c, cluster: {server: "https://x:443", certificate-authority-data: "not*base64"}}
contexts:
- {name: x, context: {cluster: c}}
)");
  auto r = LoadKubeconfig({f}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("certificate-authority-data: not base64"), std::string::npos)
      << r.status().message();
  fs::path g = d.Write("config2", R"(apiVersion: v1
kind: Config
current-context: x
clusters:
- {name: c, cluster: {server: "https://x:443"}}
users:
- {name: u, user: {client-certificate-data: Y2VydA==}}
contexts:
- {name: x, context: {cluster: c, user: u}}
)");
  auto half = LoadKubeconfig({g}, {});
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("needs its key"), std::string::npos);
}

TEST(Base64, DecodesWithAndWithoutPaddingAndIgnoresLineBreaks) {
  EXPECT_EQ(*DecodeBase64(kHelloB64, "x"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVsbG8", "x"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8=\n", "x"), "hello");
  EXPECT_EQ(*DecodeBase64("", "x"), "");
  EXPECT_FALSE(DecodeBase64("a", "x").ok());
  EXPECT_FALSE(DecodeBase64("aGVsbG8=aa", "x").ok());
}

TEST(TokenSource, ReReadsTheFileWhenKubeletRotatesIt) {
  // The kubelet writes projected tokens into a timestamped directory and swaps a symlink.
  TempDir d;
  d.Write("..2026_11_27_11_00_00.1/token", "first\n");
  fs::create_directory_symlink("..2026_11_27_11_00_00.1", d.path() / "..data");
  fs::create_symlink("..data/token", d.path() / "token");
  auto ts = TokenSource::FromFile(d.path() / "token");
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  EXPECT_EQ(*(*ts)->Token(), "first");
  d.Write("..2026_11_27_12_00_00.2/token", "second");
  fs::create_directory_symlink("..2026_11_27_12_00_00.2", d.path() / "..data_tmp");
  fs::rename(d.path() / "..data_tmp", d.path() / "..data");
  EXPECT_EQ(*(*ts)->Token(), "second");
}

TEST(TokenSource, ReReadsAnExpiredJwtAndAfterInvalidate) {
  TempDir d;
  // {"exp": 1} : expired since 1970.
  std::string expired = "eyJhbGciOiJub25lIn0.eyJleHAiOjF9.sig";
  fs::path f = d.Write("token", expired);
  auto ts = TokenSource::FromFile(f);
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(*(*ts)->Token(), expired);
  // Same size and mtime granularity could hide an in-place rewrite; expiry forces the read.
  { std::ofstream(f) << "eyJhbGciOiJub25lIn0.eyJleHAiOjJ9.sig"; }
  EXPECT_EQ(*(*ts)->Token(), "eyJhbGciOiJub25lIn0.eyJleHAiOjJ9.sig");
  EXPECT_FALSE(TokenSource::FromFile(d.path() / "nope").ok());
}

TEST(InCluster, ReadsTheServiceAccountFilesAndServiceEnvironment) {
  TempDir d;
  d.Write("sa/token", "tok");
  d.Write("sa/ca.crt", "CA");
  d.Write("sa/namespace", "kinfer-system\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto cfg = LoadInClusterConfig(d.path() / "sa");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->ca_pem, "CA");
  EXPECT_EQ(cfg->default_namespace, "kinfer-system");
  EXPECT_EQ(*cfg->token->Token(), "tok");
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(LoadInClusterConfig(d.path() / "sa")->server, "https://[fd00::1]:443");
  unsetenv("KUBERNETES_SERVICE_HOST");
  auto out = LoadInClusterConfig(d.path() / "sa");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(LoadClientConfig, PrefersAnExplicitPathThenKubeconfigEnv) {
  TempDir d;
  fs::path f = d.Write("config", KindStyleConfig());
  setenv("KUBECONFIG", (d.path() / "nothing-here").c_str(), 1);
  auto cfg = LoadClientConfig({.kubeconfig = f.string()});
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:36443");
  auto env = LoadClientConfig({});
  EXPECT_FALSE(env.ok());  // $KUBECONFIG names one missing file
  setenv("KUBECONFIG", ((d.path() / "nothing-here").string() + ":" + f.string()).c_str(), 1);
  EXPECT_TRUE(LoadClientConfig({}).ok());
  unsetenv("KUBECONFIG");
}

}  // namespace
}  // namespace kinfer::k8s
