// k8s/scale.h against a real kube-apiserver: a Deployment's scale subresource (the LLMService's
// behaves the same: autoscaling/v1 Scale, which omits replicas at 0). The reference is the API
// server: what it stores after each patch, and that of several racing writers exactly one wins.
#include <atomic>
#include <thread>
#include <vector>

#include "cluster_env.h"
#include "k8s/scale.h"

namespace kinfer::k8s {
namespace {

using testing::AdminClient;
using testing::TestNamespace;

Json Deployment(const std::string& name, const std::string& ns, int replicas) {
  Json labels = {{"app", name}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", labels}}},
            {"template",
             {{"metadata", {{"labels", labels}}},
              {"spec",
               {{"containers",
                 Json::array({{{"name", "c"}, {"image", "registry.invalid/none:1"}}})}}}}}}}};
}

class ScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = AdminClient();
    ASSERT_NE(client_, nullptr);
    ns_ = std::make_unique<TestNamespace>(*client_, "scale");
  }
  const std::string& ns() const { return ns_->name(); }
  int32_t Replicas(const std::string& name) {
    auto s = GetScale(*client_, kDeployments, ns(), name);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->spec_replicas : -1;
  }

  std::unique_ptr<Client> client_;
  std::unique_ptr<TestNamespace> ns_;
};

TEST_F(ScaleTest, FromZeroAndBackWithATestOfTheCountSeen) {
  ASSERT_TRUE(client_->Create(kDeployments, ns(), Deployment("d", ns(), 0)).ok());
  // At 0 the Scale has no replicas member: a plain `test /spec/replicas 0` would always fail.
  auto raw = client_->Get(kDeployments, ns(), "d", "scale");
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE((*raw)["spec"].contains("replicas")) << raw->dump();
  Status s = SetReplicasIf(*client_, kDeployments, ns(), "d", 0, 1);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Replicas("d"), 1);
  // A second router with the same idea finds 1, not 0: nothing changes.
  s = SetReplicasIf(*client_, kDeployments, ns(), "d", 0, 1);
  EXPECT_TRUE(IsReplicasChanged(s)) << s.ToString();
  EXPECT_NE(s.message().find("replicas is 1, not 0"), std::string::npos) << s.message();
  ASSERT_TRUE(SetReplicasIf(*client_, kDeployments, ns(), "d", 1, 3).ok());
  EXPECT_TRUE(IsReplicasChanged(SetReplicasIf(*client_, kDeployments, ns(), "d", 1, 2)));
  EXPECT_EQ(Replicas("d"), 3);
  ASSERT_TRUE(SetReplicasIf(*client_, kDeployments, ns(), "d", 3, 0).ok());
  EXPECT_EQ(Replicas("d"), 0);
  // Errors that are not a moved count come back as they are.
  s = SetReplicasIf(*client_, kDeployments, ns(), "missing", 0, 1);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
  s = SetReplicasIf(*client_, kDeployments, ns(), "d", 0, -1);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(IsReplicasChanged(s)) << s.ToString();
}

TEST_F(ScaleTest, OfManyRacingWritersExactlyOneWins) {
  ASSERT_TRUE(client_->Create(kDeployments, ns(), Deployment("race", ns(), 0)).ok());
  for (int round = 0; round < 3; ++round) {
    const int32_t from = round == 0 ? 0 : round;
    std::atomic<int> won{0}, lost{0}, other{0};
    std::vector<std::thread> racers;
    for (int i = 0; i < 8; ++i) {
      racers.emplace_back([&] {
        Status st = SetReplicasIf(*client_, kDeployments, ns(), "race", from, from + 1);
        (st.ok() ? won : IsReplicasChanged(st) ? lost : other)++;
      });
    }
    for (auto& t : racers) t.join();
    EXPECT_EQ(won.load(), 1) << "round " << round;
    EXPECT_EQ(lost.load(), 7) << "round " << round;
    EXPECT_EQ(other.load(), 0) << "round " << round;
    EXPECT_EQ(Replicas("race"), from + 1);
  }
}

TEST_F(ScaleTest, ScaleFromZeroSetsOneWhileRequestsWaitAndOnlyFromZero) {
  ASSERT_TRUE(client_->Create(kDeployments, ns(), Deployment("z", ns(), 0)).ok());
  std::atomic<bool> waiting{false};
  ScaleFromZeroOptions o{.type = &kDeployments,
                         .namespace_ = ns(),
                         .name = "z",
                         .field_manager = "kinfer-router",
                         .recheck = std::chrono::milliseconds(200)};
  // Two routers, as the chart runs them.
  ScaleFromZero a(*client_, o, [&] { return waiting.load(); });
  ScaleFromZero b(*client_, o, [&] { return waiting.load(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(Replicas("z"), 0);  // nobody waits: nothing happens
  waiting = true;
  a.Wake();
  b.Wake();
  EXPECT_TRUE(testing::Eventually([&] { return Replicas("z") == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(a.scaled_up() + b.scaled_up(), 1u);  // one write landed; the other saw 1
  EXPECT_EQ(a.failures() + b.failures(), 0u);
  // The autoscaler takes it to 3 while requests still wait: left alone.
  ASSERT_TRUE(SetReplicasIf(*client_, kDeployments, ns(), "z", 1, 3, "kinfer-autoscaler").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(Replicas("z"), 3);
  // Scaled to zero under waiting requests (a drain raced a new request): back to 1 at the next
  // recheck, without a Wake.
  ASSERT_TRUE(SetReplicasIf(*client_, kDeployments, ns(), "z", 3, 0, "kinfer-autoscaler").ok());
  EXPECT_TRUE(testing::Eventually([&] { return Replicas("z") == 1; }));
  // Nobody waits any more: a later 0 stays 0.
  waiting = false;
  ASSERT_TRUE(SetReplicasIf(*client_, kDeployments, ns(), "z", 1, 0, "kinfer-autoscaler").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(Replicas("z"), 0);
}

}  // namespace
}  // namespace kinfer::k8s
