// Leader election and Events against a real kube-apiserver. The reference for the election rules
// is client-go's leaderelection package (observed-time expiry, renew deadline, release on stop);
// short durations (lease 3 s, renew deadline 2 s, retry 0.5 s) keep the test quick, and the
// operator's own test (tests/k8s/test_operator.py) measures takeover with the real 15/10/2 s.
#include "cluster_env.h"
#include "k8s/events.h"
#include "k8s/leader_election.h"

namespace kinfer::k8s {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::ApiPort;
using testing::ClientThrough;
using testing::ConfigMap;
using testing::CuttableProxy;
using testing::Eventually;
using testing::TestNamespace;

// One candidate running its elector on a thread, recording when it led.
class Candidate {
 public:
  Candidate(Client& c, const std::string& ns, const std::string& id, bool release = true) {
    LeaderElectionOptions o;
    o.namespace_ = ns;
    o.name = "test-lock";
    o.identity = id;
    o.lease_duration = 3s;
    o.renew_deadline = 2s;
    o.retry_period = 500ms;
    o.release_on_stop = release;
    elector_ = std::make_unique<LeaderElector>(
        c, o,
        LeaderCallbacks{.on_started_leading =
                            [this](std::stop_token leading) {
                              started_ = std::chrono::steady_clock::now();
                              leading_ = leading;
                              ++starts_;
                            },
                        .on_stopped_leading =
                            [this] {
                              // The token fired before this runs: writers are already cancelled.
                              token_fired_before_stop_ = leading_.stop_requested();
                              stopped_ = std::chrono::steady_clock::now();
                              ++stops_;
                            },
                        .on_new_leader = nullptr});
    thread_ = std::jthread([this](std::stop_token stop) { elector_->Run(stop); });
  }
  ~Candidate() { Stop(); }
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  bool leading() const { return elector_->IsLeader(); }
  int starts() const { return starts_; }
  int stops() const { return stops_; }
  bool token_fired_before_stop() const { return token_fired_before_stop_; }
  std::chrono::steady_clock::time_point started() const { return started_; }
  std::chrono::steady_clock::time_point stopped() const { return stopped_; }

 private:
  std::unique_ptr<LeaderElector> elector_;
  std::atomic<int> starts_{0}, stops_{0};
  std::atomic<bool> token_fired_before_stop_{false};
  std::stop_token leading_;
  std::chrono::steady_clock::time_point started_{}, stopped_{};
  std::jthread thread_;
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = AdminClient();
    ASSERT_NE(client_, nullptr);
    ns_ = std::make_unique<TestNamespace>(*client_, "election");
  }
  void TearDown() override { ns_.reset(); }
  const std::string& ns() const { return ns_->name(); }
  Result<Lease> GetLease() {
    auto j = client_->Get(kLeases, ns(), "test-lock");
    if (!j.ok()) return j.status();
    return ParseLease(*j, "lease");
  }

  std::unique_ptr<Client> client_;
  std::unique_ptr<TestNamespace> ns_;
};

TEST_F(LeaderElectionTest, OneLeadsAndAReleaseHandsOverWithinARetryPeriod) {
  Candidate a(*client_, ns(), "a");
  ASSERT_TRUE(Eventually([&] { return a.leading(); }, 10s));
  Candidate b(*client_, ns(), "b");
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(a.leading());
  EXPECT_FALSE(b.leading());
  auto lease = GetLease();
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->spec.holder_identity, "a");
  EXPECT_EQ(lease->spec.lease_duration_seconds, 3);

  auto t0 = std::chrono::steady_clock::now();
  a.Stop();  // steps down and releases
  EXPECT_EQ(a.stops(), 1);
  ASSERT_TRUE(Eventually([&] { return b.leading(); }, 5s));
  auto handover = std::chrono::steady_clock::now() - t0;
  // Released: b need not wait out the lease, only its next retry (0.5 s + 20% jitter).
  EXPECT_LT(handover, 1500ms);
  EXPECT_EQ(GetLease()->spec.holder_identity, "b");
  EXPECT_EQ(GetLease()->spec.lease_transitions, 1);
}

TEST_F(LeaderElectionTest, ACrashedLeaderIsReplacedAfterTheLeaseExpires) {
  auto a = std::make_unique<Candidate>(*client_, ns(), "a", /*release=*/false);
  ASSERT_TRUE(Eventually([&] { return a->leading(); }, 10s));
  Candidate b(*client_, ns(), "b");
  std::this_thread::sleep_for(1s);
  auto t0 = std::chrono::steady_clock::now();
  a.reset();  // gone without releasing, as after SIGKILL
  ASSERT_TRUE(Eventually([&] { return b.leading(); }, 10s));
  auto took = std::chrono::steady_clock::now() - t0;
  // Not before the 3 s lease has passed unrenewed, and soon after (one retry).
  EXPECT_GE(took, 2s);
  EXPECT_LT(took, 5s);
}

TEST_F(LeaderElectionTest, ALeaderCutOffStepsDownBeforeAnotherCanTakeOver) {
  CuttableProxy proxy("127.0.0.1", ApiPort());
  auto through = ClientThrough(proxy);
  Candidate a(*through, ns(), "a");
  ASSERT_TRUE(Eventually([&] { return a.leading(); }, 10s));
  Candidate b(*client_, ns(), "b");
  std::this_thread::sleep_for(1s);
  auto cut = std::chrono::steady_clock::now();
  proxy.Cut();
  ASSERT_TRUE(Eventually([&] { return a.stops() == 1; }, 5s));
  ASSERT_TRUE(Eventually([&] { return b.leading(); }, 10s));
  // a stopped leading (its writers cancelled) before b started: never two leaders.
  EXPECT_TRUE(a.token_fired_before_stop());
  EXPECT_LT(a.stopped(), b.started());
  EXPECT_LE(a.stopped() - cut, 2500ms);  // renew deadline 2 s (+ a retry's slack)
  proxy.Restore();
  // a campaigns again but b holds the lease now.
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(a.leading());
  EXPECT_TRUE(b.leading());
}

TEST(Events, RepeatsBecomeASeriesAndKubectlCanFindThem) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  TestNamespace ns(*client, "events");
  auto cm = client->Create(kConfigMaps, ns.name(), ConfigMap("subject", ns.name()));
  ASSERT_TRUE(cm.ok());
  EventRecorder rec(*client, {.controller = "kinfer.dev/operator", .instance = "test-pod"});
  ASSERT_TRUE(rec.Record(*cm, EventType::kNormal, "Created", "Reconcile", "made it").ok());
  ASSERT_TRUE(rec.Record(*cm, EventType::kNormal, "Created", "Reconcile", "made it").ok());
  ASSERT_TRUE(rec.Record(*cm, EventType::kNormal, "Created", "Reconcile", "made it").ok());
  Status w = rec.Record(*cm, EventType::kWarning, "Failed", "Reconcile", std::string(3000, 'x'));
  ASSERT_TRUE(w.ok()) << w.ToString();
  // Read back through the core/v1 API, as `kubectl describe` does.
  ListOptions lo;
  lo.field_selector = "involvedObject.name=subject";
  auto list = client->List(kCoreEvents, ns.name(), lo);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->items.size(), 2u);
  std::map<std::string, Json> by_reason;
  for (const Json& e : list->items) by_reason[e["reason"]] = e;
  // events.k8s.io's series reads back in core/v1 as series.count.
  EXPECT_EQ(by_reason["Created"]["series"]["count"], 3);
  EXPECT_EQ(by_reason["Created"]["message"], "made it");
  EXPECT_EQ(by_reason["Created"]["type"], "Normal");
  EXPECT_EQ(by_reason["Created"]["involvedObject"]["uid"], (*cm)["metadata"]["uid"]);
  EXPECT_EQ(by_reason["Created"]["reportingComponent"], "kinfer.dev/operator");
  EXPECT_EQ(by_reason["Failed"]["type"], "Warning");
  EXPECT_EQ(by_reason["Failed"]["message"].get<std::string>().size(), 1024u);
}

}  // namespace
}  // namespace kinfer::k8s
