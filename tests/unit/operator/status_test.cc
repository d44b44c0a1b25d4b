// LLMService status from observed children. References: the Kubernetes API conventions for
// conditions (lastTransitionTime changes only with status; observedGeneration), and
// `kubectl rollout status`'s rule for a finished Deployment rollout (observedGeneration caught
// up, every replica updated and available, no old replicas left).
#include "operator/status.h"

#include <gtest/gtest.h>

namespace kinfer::op {
namespace {

using namespace std::chrono_literals;

LLMService Service(int replicas = 2, bool router = true) {
  Json obj = Json::parse(R"({"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
      "metadata": {"name": "tiny", "namespace": "llm", "uid": "u", "generation": 4},
      "spec": {"model": {"name": "tiny", "source": {"hostPath": {"path": "/m"}}}}})");
  obj["spec"]["replicas"] = replicas;
  obj["spec"]["router"]["enabled"] = router;
  return *ParseLLMService(obj);
}

Json Deployment(int spec, int replicas, int updated, int ready, int available, int gen = 2,
                int observed = 2) {
  return {{"metadata", {{"generation", gen}}},
          {"spec", {{"replicas", spec}}},
          {"status",
           {{"observedGeneration", observed},
            {"replicas", replicas},
            {"updatedReplicas", updated},
            {"readyReplicas", ready},
            {"availableReplicas", available}}}};
}

std::map<std::string, Json> ByType(const Json& status) {
  std::map<std::string, Json> out;
  for (const Json& c : status["conditions"]) out[c["type"]] = c;
  return out;
}

const auto kT0 = std::chrono::system_clock::time_point(std::chrono::seconds(1795777200));

TEST(Rollout, JudgesCompletionLikeKubectlRolloutStatus) {
  EXPECT_TRUE(Rollout(Deployment(2, 2, 2, 2, 2)).complete);
  EXPECT_FALSE(Rollout(Deployment(2, 3, 1, 3, 3)).complete);        // an old replica still runs
  EXPECT_FALSE(Rollout(Deployment(2, 2, 2, 2, 1)).complete);        // one not yet available
  EXPECT_FALSE(Rollout(Deployment(2, 2, 2, 2, 2, 3, 2)).complete);  // spec not yet observed
  Json stuck = Deployment(2, 2, 1, 1, 1);
  stuck["status"]["conditions"] =
      Json::array({{{"type", "Progressing"},
                    {"status", "False"},
                    {"reason", "ProgressDeadlineExceeded"},
                    {"message", "ReplicaSet \"x\" has timed out progressing."}}});
  EXPECT_EQ(Rollout(stuck).failure, "ReplicaSet \"x\" has timed out progressing.");
}

TEST(Status, AHealthyServiceIsAvailableAndDone) {
  LLMService s = Service();
  DesiredState d;
  Json engine = Deployment(2, 2, 2, 2, 2), router = Deployment(2, 2, 2, 2, 2);
  Json st = ComputeStatus({.service = &s,
                           .desired = &d,
                           .engine_deployment = &engine,
                           .router_deployment = &router,
                           .now = kT0});
  EXPECT_EQ(st["observedGeneration"], 4);
  EXPECT_EQ(st["readyReplicas"], 2);
  EXPECT_EQ(st["routerReadyReplicas"], 2);
  EXPECT_EQ(st["selector"],
            "app.kubernetes.io/component=engine,app.kubernetes.io/instance=tiny,"
            "app.kubernetes.io/name=kinfer");
  EXPECT_EQ(st["endpoint"], "http://tiny.llm.svc:8000");
  auto c = ByType(st);
  EXPECT_EQ(c["Available"]["status"], "True");
  EXPECT_EQ(c["ModelReady"]["status"], "True");
  EXPECT_EQ(c["Progressing"]["status"], "False");
  EXPECT_EQ(c["Degraded"]["status"], "False");
  EXPECT_EQ(c["Available"]["observedGeneration"], 4);
  EXPECT_EQ(c["Available"]["lastTransitionTime"], "2026-11-27T11:00:00Z");
}

TEST(Status, TransitionTimesMoveOnlyWhenTheStatusChanges) {
  LLMService s = Service();
  DesiredState d;
  Json engine = Deployment(2, 2, 2, 2, 2), router = Deployment(2, 2, 2, 2, 2);
  s.status = ComputeStatus({.service = &s,
                            .desired = &d,
                            .engine_deployment = &engine,
                            .router_deployment = &router,
                            .now = kT0});
  // A minute later, a rollout starts: Progressing flips, Available stays True with a new message.
  Json rolling = Deployment(2, 3, 1, 3, 3, 3, 3);
  Json later = ComputeStatus({.service = &s,
                              .desired = &d,
                              .engine_deployment = &rolling,
                              .router_deployment = &router,
                              .now = kT0 + 60s});
  auto c = ByType(later);
  EXPECT_EQ(c["Available"]["status"], "True");
  EXPECT_EQ(c["Available"]["lastTransitionTime"], "2026-11-27T11:00:00Z");
  EXPECT_NE(c["Available"]["message"], ByType(s.status)["Available"]["message"]);
  EXPECT_EQ(c["Progressing"]["status"], "True");
  EXPECT_EQ(c["Progressing"]["reason"], "RollingOut");
  EXPECT_EQ(c["Progressing"]["lastTransitionTime"], "2026-11-27T11:01:00Z");
  // The same inputs again give the same status: nothing to write, no resourceVersion change.
  s.status = later;
  EXPECT_EQ(ComputeStatus({.service = &s,
                           .desired = &d,
                           .engine_deployment = &rolling,
                           .router_deployment = &router,
                           .now = kT0 + 120s}),
            later);
}

TEST(Status, NoReadyRouterOrEngineMeansUnavailable) {
  LLMService s = Service();
  DesiredState d;
  Json engine = Deployment(2, 2, 2, 2, 2), router = Deployment(2, 2, 2, 0, 0);
  auto c = ByType(ComputeStatus({.service = &s,
                                 .desired = &d,
                                 .engine_deployment = &engine,
                                 .router_deployment = &router,
                                 .now = kT0}));
  EXPECT_EQ(c["Available"]["status"], "False");
  EXPECT_EQ(c["Available"]["reason"], "RouterNotReady");
  Json none = Deployment(2, 2, 2, 0, 0);
  c = ByType(ComputeStatus({.service = &s,
                            .desired = &d,
                            .engine_deployment = &none,
                            .router_deployment = &router,
                            .now = kT0}));
  EXPECT_EQ(c["Available"]["reason"], "NoReadyReplicas");
  EXPECT_EQ(c["ModelReady"]["status"], "False");
  LLMService zero = Service(0);
  c = ByType(ComputeStatus({.service = &zero,
                            .desired = &d,
                            .engine_deployment = &none,
                            .router_deployment = &router,
                            .now = kT0}));
  EXPECT_EQ(c["Available"]["reason"], "ScaledToZero");
}

TEST(Status, PullJobOutcomesDriveModelReadyAndDegraded) {
  LLMService s = Service();
  DesiredState d;
  d.pull_job = "tiny-pull-abc";
  d.engine_deployed = false;
  Json running = {{"status", {{"active", 1}}}};
  auto c = ByType(ComputeStatus({.service = &s, .desired = &d, .pull_job = &running, .now = kT0}));
  EXPECT_EQ(c["ModelReady"]["reason"], "Pulling");
  EXPECT_EQ(c["Progressing"]["reason"], "Pulling");
  Json failed = {{"status",
                  {{"conditions",
                    Json::array({{{"type", "Failed"},
                                  {"status", "True"},
                                  {"reason", "BackoffLimitExceeded"},
                                  {"message", "Job has reached the specified backoff limit"}}})}}}};
  c = ByType(ComputeStatus({.service = &s, .desired = &d, .pull_job = &failed, .now = kT0}));
  EXPECT_EQ(c["ModelReady"]["reason"], "PullFailed");
  EXPECT_EQ(c["Degraded"]["status"], "True");
  EXPECT_NE(c["Degraded"]["message"].get<std::string>().find("backoff limit"), std::string::npos);
  Json done = {{"status",
                {{"succeeded", 1},
                 {"conditions", Json::array({{{"type", "Complete"}, {"status", "True"}}})}}}};
  c = ByType(ComputeStatus({.service = &s, .desired = &d, .pull_job = &done, .now = kT0}));
  EXPECT_EQ(c["ModelReady"]["status"], "True");
}

TEST(Status, AReconcileErrorIsDegradedWithTheApiServersWords) {
  LLMService s = Service();
  Json st = ComputeStatus({.service = &s,
                           .error = "PATCH /apis/apps/v1/...: 422 Invalid: spec.template: bad",
                           .now = kT0});
  auto c = ByType(st);
  EXPECT_EQ(c["Degraded"]["status"], "True");
  EXPECT_EQ(c["Degraded"]["reason"], "ReconcileFailed");
  EXPECT_NE(c["Degraded"]["message"].get<std::string>().find("422 Invalid"), std::string::npos);
}

TEST(Status, EventsAreRecordedOnConditionChangesOnly) {
  LLMService s = Service();
  DesiredState d;
  Json engine = Deployment(2, 2, 2, 0, 0), router = Deployment(2, 2, 2, 2, 2);
  Json before = ComputeStatus({.service = &s,
                               .desired = &d,
                               .engine_deployment = &engine,
                               .router_deployment = &router,
                               .now = kT0});
  Json ready = Deployment(2, 2, 2, 2, 2);
  s.status = before;
  Json after = ComputeStatus({.service = &s,
                              .desired = &d,
                              .engine_deployment = &ready,
                              .router_deployment = &router,
                              .now = kT0 + 5s});
  auto events = TransitionEvents(before, after);
  std::vector<std::string> reasons;
  for (const auto& e : events) reasons.push_back(e.reason);
  EXPECT_EQ(reasons, (std::vector<std::string>{"ModelReady", "Available", "RolloutComplete"}));
  EXPECT_TRUE(TransitionEvents(after, after).empty());
}

}  // namespace
}  // namespace kinfer::op
