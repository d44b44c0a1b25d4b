// The Kubernetes client against a real kube-apiserver and etcd (tests/k8s/cluster.sh): the
// reference is the API server itself, so what is checked is what a controller relies on —
// pagination, watch event order, server-side apply ownership, patches, errors that
// carry the server's message, token authentication and re-reading the token file. (410 Gone
// needs an API server restart: informer_cluster_test.cc does one.)
#include <cstdio>
#include <fstream>

#include "cluster_env.h"
#include "k8s/objects.h"

namespace kinfer::k8s {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::ConfigMap;
using testing::Env;
using testing::Eventually;
using testing::TestNamespace;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = AdminClient();
    ASSERT_NE(client_, nullptr);
    ns_ = std::make_unique<TestNamespace>(*client_, "client");
  }
  void TearDown() override { ns_.reset(); }
  const std::string& ns() const { return ns_->name(); }

  std::unique_ptr<Client> client_;
  std::unique_ptr<TestNamespace> ns_;
};

TEST_F(ClientTest, TalksTlsWithAClientCertificate) {
  auto r = client_->Raw("GET", "/version");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->code, 200);
  auto v = ParseJson(r->body, "/version");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->value("gitVersion", ""), "v1.35.4");
}

TEST_F(ClientTest, ListsEveryPageAndFillsInKind) {
  for (int i = 0; i < 23; ++i) {
    auto c = client_->Create(kConfigMaps, ns(),
                             ConfigMap("cm-" + std::to_string(i), ns(), {{"set", "paged"}}));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }
  ListOptions lo;
  lo.label_selector = "set=paged";
  lo.limit = 5;  // five pages
  auto list = client_->List(kConfigMaps, ns(), lo);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->items.size(), 23u);
  EXPECT_FALSE(list->resource_version.empty());
  std::set<std::string> names;
  for (const Json& item : list->items) {
    EXPECT_EQ(item["kind"], "ConfigMap");
    EXPECT_EQ(item["apiVersion"], "v1");
    names.insert(item["metadata"]["name"].get<std::string>());
  }
  EXPECT_EQ(names.size(), 23u);  // no page repeated or skipped
  lo.limit = 0;
  EXPECT_EQ(client_->List(kConfigMaps, ns(), lo)->items.size(), 23u);
}

TEST_F(ClientTest, WatchDeliversEventsInOrderFromTheListVersion) {
  auto list = client_->List(kConfigMaps, ns(), {});
  ASSERT_TRUE(list.ok());
  std::mutex mu;
  std::vector<std::string> seen;
  std::stop_source stop;
  Status watch_status;
  std::thread watcher([&] {
    WatchOptions wo;
    wo.resource_version = list->resource_version;
    wo.timeout_seconds = 60;
    watch_status = client_->Watch(
        kConfigMaps, ns(), wo,
        [&](WatchEvent&& e) {
          if (e.type == WatchEventType::kBookmark) return Status::Ok();
          std::lock_guard<std::mutex> lock(mu);
          seen.push_back(std::string(WatchEventTypeName(e.type)) + " " +
                         e.object["metadata"]["name"].get<std::string>() + " " +
                         e.object.value("kind", ""));
          return Status::Ok();
        },
        stop.get_token());
  });
  ASSERT_TRUE(client_->Create(kConfigMaps, ns(), ConfigMap("w", ns())).ok());
  ASSERT_TRUE(
      client_->Patch(kConfigMaps, ns(), "w", PatchType::kMerge, Json{{"data", {{"k", "v"}}}}).ok());
  ASSERT_TRUE(client_->Delete(kConfigMaps, ns(), "w").ok());
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size() >= 3;
  }));
  auto t0 = std::chrono::steady_clock::now();
  stop.request_stop();
  watcher.join();
  // A stop wakes the transfer at once instead of waiting for the next byte or a timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_EQ(watch_status.code(), StatusCode::kCancelled) << watch_status.ToString();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED w ConfigMap", "MODIFIED w ConfigMap",
                                            "DELETED w ConfigMap"}));
}

TEST_F(ClientTest, WatchEndsCleanlyAtItsTimeoutAndSendsBookmarks) {
  auto list = client_->List(kConfigMaps, ns(), {});
  ASSERT_TRUE(list.ok());
  WatchOptions wo;
  wo.resource_version = list->resource_version;
  wo.timeout_seconds = 2;
  auto t0 = std::chrono::steady_clock::now();
  Status s = client_->Watch(kConfigMaps, ns(), wo, [](WatchEvent&&) { return Status::Ok(); });
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE(took, 1500ms);
  EXPECT_LT(took, 10s);
}

TEST_F(ClientTest, ErrorsCarryTheApiServersMessage) {
  auto missing = client_->Get(kConfigMaps, ns(), "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("404 NotFound: configmaps \"nope\" not found"),
            std::string::npos)
      << missing.status().message();

  ASSERT_TRUE(client_->Create(kConfigMaps, ns(), ConfigMap("dup", ns())).ok());
  auto dup = client_->Create(kConfigMaps, ns(), ConfigMap("dup", ns()));
  ASSERT_FALSE(dup.ok());
  EXPECT_TRUE(IsAlreadyExists(dup.status())) << dup.status().ToString();

  // A PUT with a resourceVersion that has moved on is a Conflict.
  auto got = client_->Get(kConfigMaps, ns(), "dup");
  ASSERT_TRUE(got.ok());
  Json stale = *got;
  ASSERT_TRUE(
      client_->Patch(kConfigMaps, ns(), "dup", PatchType::kMerge, Json{{"data", {{"a", "1"}}}})
          .ok());
  stale["data"] = {{"b", "2"}};
  auto conflict = client_->Update(kConfigMaps, ns(), stale);
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status().ToString();
  EXPECT_NE(conflict.status().message().find("the object has been modified"), std::string::npos);

  // Schema errors come back as 422 with the field named.
  Json bad = ConfigMap("bad", ns());
  bad["metadata"]["name"] = "Not_A_DNS_Name";
  auto invalid = client_->Create(kConfigMaps, ns(), bad);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(invalid.status().message().find("422 Invalid"), std::string::npos)
      << invalid.status().message();
  EXPECT_NE(invalid.status().message().find("metadata.name"), std::string::npos);
}

TEST_F(ClientTest, ServerSideApplyKeepsOtherManagersFieldsAndReportsConflicts) {
  Json mine = ConfigMap("ssa", ns(), {{"app", "kinfer"}}, {{"owned", "by-operator"}});
  ApplyOptions op;
  op.field_manager = "kinfer-operator";
  auto first = client_->Apply(kConfigMaps, ns(), mine, op);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::string rv1 = (*first)["metadata"]["resourceVersion"];

  // The same apply again changes nothing: not even the resourceVersion.
  auto again = client_->Apply(kConfigMaps, ns(), mine, op);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["metadata"]["resourceVersion"], rv1);

  // Another manager adds a label; our next apply leaves it alone.
  ApplyOptions other;
  other.field_manager = "someone-else";
  other.force = false;
  Json theirs = ConfigMap("ssa", ns(), {{"team", "search"}});
  ASSERT_TRUE(client_->Apply(kConfigMaps, ns(), theirs, other).ok());
  auto after = client_->Apply(kConfigMaps, ns(), mine, op);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)["metadata"]["labels"]["team"], "search");
  EXPECT_EQ((*after)["metadata"]["labels"]["app"], "kinfer");

  // Without force, touching our field is a conflict that names the manager.
  Json grab = ConfigMap("ssa", ns(), {}, {{"owned", "by-them"}});
  auto conflict = client_->Apply(kConfigMaps, ns(), grab, other);
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status().ToString();
  EXPECT_NE(conflict.status().message().find("kinfer-operator"), std::string::npos)
      << conflict.status().message();
  // With force, the field changes hands.
  other.force = true;
  auto forced = client_->Apply(kConfigMaps, ns(), grab, other);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ((*forced)["data"]["owned"], "by-them");
}

TEST_F(ClientTest, JsonPatchTestOpsMakeCompareAndSwap) {
  ASSERT_TRUE(
      client_->Create(kConfigMaps, ns(), ConfigMap("cas", ns(), {}, {{"replicas", "0"}})).ok());
  Json swap = Json::array({{{"op", "test"}, {"path", "/data/replicas"}, {"value", "0"}},
                           {{"op", "replace"}, {"path", "/data/replicas"}, {"value", "1"}}});
  auto first = client_->Patch(kConfigMaps, ns(), "cas", PatchType::kJson, swap);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ((*first)["data"]["replicas"], "1");
  // The second racer's test fails: nothing changes and the error says why.
  auto second = client_->Patch(kConfigMaps, ns(), "cas", PatchType::kJson, swap);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kInvalidArgument) << second.status().ToString();
  EXPECT_NE(second.status().message().find("`test` op did not match"), std::string::npos)
      << second.status().message();
  EXPECT_EQ((*client_->Get(kConfigMaps, ns(), "cas"))["data"]["replicas"], "1");
}

// A ServiceAccount token from the TokenRequest API, as the kubelet projects into pods.
std::string IssueToken(Client& c, const std::string& ns, const std::string& sa) {
  auto created = c.Create(kServiceAccounts, ns,
                          Json{{"apiVersion", "v1"},
                               {"kind", "ServiceAccount"},
                               {"metadata", {{"name", sa}, {"namespace", ns}}}});
  EXPECT_TRUE(created.ok() || IsAlreadyExists(created.status())) << created.status().ToString();
  auto r = c.Raw("POST", kServiceAccounts.Path(ns, sa, "token"),
                 Json{{"apiVersion", "authentication.k8s.io/v1"},
                      {"kind", "TokenRequest"},
                      {"spec", {{"expirationSeconds", 3600}}}}
                     .dump(),
                 "application/json");
  EXPECT_TRUE(r.ok() && r->code == 201) << (r.ok() ? r->body : r.status().ToString());
  if (!r.ok()) return "";
  return ParseJson(r->body, "token")->at("status").at("token").get<std::string>();
}

TEST_F(ClientTest, TokenAuthForbiddenMessagesAndTokenFileRotation) {
  // A token for an account with no rights: every call is Forbidden, with the server's words.
  std::string nobody = IssueToken(*client_, ns(), "nobody");
  ASSERT_FALSE(nobody.empty());
  char tmpl[] = "/tmp/kinfer-token-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string token_file = dir + "/token";
  std::ofstream(token_file) << nobody;
  std::string kubeconfig = dir + "/config";
  std::ofstream(kubeconfig) << fmt::format(R"(apiVersion: v1
kind: Config
current-context: t
clusters:
- {{name: c, cluster: {{server: "{}", certificate-authority: "{}"}}}}
users:
- {{name: u, user: {{tokenFile: token}}}}
contexts:
- {{name: t, context: {{cluster: c, user: u, namespace: {}}}}}
)",
                                           Env("K8S_API"), Env("K8S_CA"), ns());
  LoadOptions lo;
  lo.kubeconfig = kubeconfig;
  auto cfg = LoadClientConfig(lo);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto c = Client::Create(std::move(*cfg));
  ASSERT_TRUE(c.ok());
  auto denied = (*c)->List(kConfigMaps, ns(), {});
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(IsForbidden(denied.status())) << denied.status().ToString();
  EXPECT_NE(denied.status().message().find(
                fmt::format("User \"system:serviceaccount:{}:nobody\" cannot list resource "
                            "\"configmaps\"",
                            ns())),
            std::string::npos)
      << denied.status().message();

  // Grant a second account read access, rotate the file to its token: the next call uses it.
  ASSERT_TRUE(
      client_
          ->Create(
              kRoles, ns(),
              Json{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                   {"kind", "Role"},
                   {"metadata", {{"name", "read-cm"}}},
                   {"rules",
                    {{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"list"}}}}}})
          .ok());
  ASSERT_TRUE(
      client_
          ->Create(kRoleBindings, ns(),
                   Json{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                        {"kind", "RoleBinding"},
                        {"metadata", {{"name", "reader"}}},
                        {"roleRef",
                         {{"apiGroup", "rbac.authorization.k8s.io"},
                          {"kind", "Role"},
                          {"name", "read-cm"}}},
                        {"subjects",
                         {{{"kind", "ServiceAccount"}, {"name", "reader"}, {"namespace", ns()}}}}})
          .ok());
  std::string reader = IssueToken(*client_, ns(), "reader");
  std::ofstream(token_file + ".new") << reader;
  std::filesystem::rename(token_file + ".new", token_file);
  EXPECT_TRUE(Eventually([&] { return (*c)->List(kConfigMaps, ns(), {}).ok(); }, 10s));
  std::filesystem::remove_all(dir);
}

TEST_F(ClientTest, RefusesToSendCredentialsOverPlainHttp) {
  ClientConfig cfg;
  cfg.server = "http://127.0.0.1:1";
  cfg.token = std::make_shared<TokenSource>("secret");
  auto c = Client::Create(cfg);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("plain http"), std::string::npos);
}

TEST_F(ClientTest, AnUnreachableServerIsUnavailableNotAHang) {
  ClientConfig cfg;
  cfg.server = "https://127.0.0.1:1";
  auto c = Client::Create(cfg);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Get(kConfigMaps, "x", "y");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("https://127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace kinfer::k8s
