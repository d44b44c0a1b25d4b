// The reconciler's pure function. Golden files (tests/unit/operator/golden/, rewritten with
// KINFER_UPDATE_GOLDEN=1 and reviewed by eye) pin every field of every object; the k8s stage
// (tests/k8s/test_operator.py) has the real API server accept them all with a strict dry-run
// apply. The other tests here state the properties the issue asks for, so a golden rewrite cannot
// quietly drop one.
#include "operator/desired.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "k8s/yaml.h"

namespace kinfer::op {
namespace {

std::string Dir() { return std::string(KINFER_FIXTURES_DIR) + "/../unit/operator"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

LLMService Load(const std::string& name) {
  auto docs = k8s::YamlToJson(ReadFile(Dir() + "/testdata/" + name + ".yaml"), name);
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  EXPECT_EQ(docs->size(), 1u);
  auto s = ParseLLMService(docs->at(0));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

ReconcileConfig Config() {
  ReconcileConfig c;
  c.image = "localhost/kinfer:0.1.0";
  c.operator_namespace = "kinfer-system";
  return c;
}

const Json* Find(const DesiredState& d, const std::string& kind, const std::string& name) {
  for (const Json& o : d.objects) {
    if (o["kind"] == kind && o["metadata"]["name"] == name) return &o;
  }
  return nullptr;
}

std::vector<std::string> Kinds(const DesiredState& d) {
  std::vector<std::string> out;
  for (const Json& o : d.objects) {
    out.push_back(o["kind"].get<std::string>() + "/" + o["metadata"]["name"].get<std::string>());
  }
  return out;
}

struct GoldenCase {
  const char* input;
  const char* golden;
  ObservedState observed;
};

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesTheGoldenFile) {
  const GoldenCase& c = GetParam();
  auto want = Desired(Load(c.input), Config(), c.observed);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  std::string got = ObjectsYaml(want->objects);
  std::string path = Dir() + "/golden/" + c.golden + ".yaml";
  if (std::getenv("KINFER_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << got;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::string expected = ReadFile(path);
  ASSERT_FALSE(expected.empty()) << path << " is missing: run with KINFER_UPDATE_GOLDEN=1";
  EXPECT_EQ(got, expected) << "the objects changed; if on purpose, rewrite " << path
                           << " with KINFER_UPDATE_GOLDEN=1 and review the diff";
  // The golden text reads back as the same objects (the YAML printer quotes what it must).
  auto back = k8s::YamlToJson(got, path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), want->objects.size());
  for (size_t i = 0; i < back->size(); ++i) EXPECT_EQ((*back)[i], want->objects[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(
    Operator, Golden,
    ::testing::Values(GoldenCase{"hostpath-router", "hostpath-router", {}},
                      GoldenCase{"hub-pvc", "hub-pvc-pulled", {.pull_complete = true}},
                      GoldenCase{"hub-pvc", "hub-pvc-first-pull", {}},
                      GoldenCase{"pvc-no-router", "pvc-no-router", {}},
                      GoldenCase{"hub-emptydir-open", "hub-emptydir-open", {}}),
    [](const auto& info) {
      std::string n = info.param.golden;
      for (char& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

TEST(Desired, EveryChildIsOwnedAndLabelledSoGcAndInformersFindIt) {
  for (const char* input : {"hostpath-router", "hub-pvc", "pvc-no-router", "hub-emptydir-open"}) {
    LLMService s = Load(input);
    auto want = Desired(s, Config(), {.pull_complete = true});
    ASSERT_TRUE(want.ok());
    for (const Json& o : want->objects) {
      const Json& m = o["metadata"];
      EXPECT_EQ(m["namespace"], s.metadata.namespace_) << input;
      ASSERT_EQ(m["ownerReferences"].size(), 1u);
      const Json& ref = m["ownerReferences"][0];
      EXPECT_EQ(ref["uid"], s.metadata.uid);
      EXPECT_EQ(ref["kind"], "LLMService");
      EXPECT_EQ(ref["controller"], true);
      EXPECT_EQ(ref["blockOwnerDeletion"], true);
      EXPECT_EQ(m["labels"][kManagedByLabel], kManagedByValue);
      EXPECT_EQ(m["labels"][kServiceLabel], s.metadata.name);
    }
  }
}

TEST(Desired, EngineRollsOneAtATimeAndOutlivesItsDrain) {
  LLMService s = Load("hub-pvc");
  auto want = Desired(s, Config(), {.pull_complete = true});
  const Json* d = Find(*want, "Deployment", "qwen-engine");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->at("spec")["replicas"], 3);
  EXPECT_EQ(d->at("spec")["strategy"]["rollingUpdate"]["maxSurge"], 1);
  EXPECT_EQ(d->at("spec")["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
  const Json& pod = d->at("spec")["template"]["spec"];
  const Json& c = pod["containers"][0];
  int pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"];
  int grace = pod["terminationGracePeriodSeconds"];
  // The kubelet must not kill a replica that is still finishing requests: preStop, then the
  // drain delay, then up to the shutdown timeout (120 s in this spec), then a margin.
  EXPECT_GT(grace, pre_stop + 5 + 120);
  auto args = c["args"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(args.begin(), args.end(), "--shutdown-timeout=120"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "--kv-cache-memory=2147483648"), args.end());
  EXPECT_EQ(c["startupProbe"]["httpGet"]["path"], "/health");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/ready");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/health");
  EXPECT_EQ(c["resources"]["limits"]["nvidia.com/gpu"], 1);
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(c["image"], "registry.example.com/kinfer:0.1.0-cuda");  // spec.image wins
}

TEST(Desired, ANewEngineFlagChangesOnlyTheEnginePodTemplate) {
  LLMService a = Load("hostpath-router");
  LLMService b = a;
  b.spec.engine.extra_args.push_back("--max-num-batched-tokens=512");
  auto wa = Desired(a, Config(), {});
  auto wb = Desired(b, Config(), {});
  ASSERT_EQ(wa->objects.size(), wb->objects.size());
  for (size_t i = 0; i < wa->objects.size(); ++i) {
    const Json& x = wa->objects[i];
    const Json& y = wb->objects[i];
    if (x["kind"] == "Deployment" && x["metadata"]["name"] == "tiny-engine") {
      EXPECT_NE(x["spec"]["template"], y["spec"]["template"]);
      Json xs = x, ys = y;
      xs["spec"].erase("template");
      ys["spec"].erase("template");
      EXPECT_EQ(xs, ys);
    } else {
      EXPECT_EQ(x, y) << x["kind"] << " " << x["metadata"]["name"];
    }
  }
}

TEST(Desired, TheRouterFrontsTheEnginesWhenEnabled) {
  auto with = Desired(Load("hostpath-router"), Config(), {});
  EXPECT_EQ(Kinds(*with), (std::vector<std::string>{
                              "ServiceAccount/tiny-router", "Role/tiny-router",
                              "RoleBinding/tiny-router", "Service/tiny-engine", "Service/tiny",
                              "Deployment/tiny-engine", "Deployment/tiny-router",
                              "PodDisruptionBudget/tiny-engine", "PodDisruptionBudget/tiny-router",
                              "NetworkPolicy/tiny-engine", "NetworkPolicy/tiny-router"}));
  const Json* entry = Find(*with, "Service", "tiny");
  EXPECT_EQ(entry->at("spec")["selector"]["app.kubernetes.io/component"], "router");
  EXPECT_EQ(Find(*with, "Service", "tiny-engine")->at("spec")["clusterIP"], "None");
  const Json* router = Find(*with, "Deployment", "tiny-router");
  auto args = router->at("spec")["template"]["spec"]["containers"][0]["args"]
                  .get<std::vector<std::string>>();
  EXPECT_EQ(args[0], "router");
  EXPECT_NE(std::find(args.begin(), args.end(), "--endpointslices=llm/tiny-engine"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "--policy=prefix"), args.end());
  // hostPath is on every node, so the router reads the model's tokenizer too.
  EXPECT_NE(std::find(args.begin(), args.end(), "--model=/models/stories260K.gguf"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "--api-key-file=/etc/kinfer/auth/api-keys"),
            args.end());
  // Only the router reaches the engines' API port.
  const Json* np = Find(*with, "NetworkPolicy", "tiny-engine");
  EXPECT_EQ(np->at("spec")["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
                          ["app.kubernetes.io/component"],
            "router");

  auto without = Desired(Load("pvc-no-router"), Config(), {});
  EXPECT_EQ(Kinds(*without), (std::vector<std::string>{"Service/llama", "Deployment/llama-engine",
                                                       "PodDisruptionBudget/llama-engine",
                                                       "NetworkPolicy/llama-engine"}));
  EXPECT_EQ(
      Find(*without, "Service", "llama")->at("spec")["selector"]["app.kubernetes.io/component"],
      "engine");
}

// The autoscaler drains a replica by setting kinfer.dev/serving=false on its pod: the engine
// Services must stop selecting it while its ReplicaSet (the Deployment's selector) keeps it.
TEST(Desired, EngineServicesSelectServingPodsAndTheDeploymentSelectsThemAll) {
  for (const char* input : {"hostpath-router", "pvc-no-router"}) {
    SCOPED_TRACE(input);
    LLMService s = Load(input);
    auto want = Desired(s, Config(), {});
    ASSERT_TRUE(want.ok());
    const ChildNames names(s.metadata.name);
    const Json* d = Find(*want, "Deployment", names.engine);
    ASSERT_NE(d, nullptr);
    const Json& labels = d->at("spec")["template"]["metadata"]["labels"];
    EXPECT_EQ(labels[kServingLabel], "true");
    const Json& selector = d->at("spec")["selector"]["matchLabels"];
    EXPECT_FALSE(selector.contains(kServingLabel));
    for (const auto& [k, v] : selector.items()) EXPECT_EQ(labels[k], v) << k;
    bool router = s.spec.router.enabled;
    const Json* svc = Find(*want, "Service", router ? names.engine : names.entry_service);
    ASSERT_NE(svc, nullptr);
    EXPECT_EQ(svc->at("spec")["selector"][kServingLabel], "true");
    for (const auto& [k, v] : selector.items()) EXPECT_EQ(svc->at("spec")["selector"][k], v) << k;
    // PDBs and NetworkPolicies keep covering a pod being drained.
    EXPECT_FALSE(Find(*want, "PodDisruptionBudget", names.engine)
                     ->at("spec")["selector"]["matchLabels"]
                     .contains(kServingLabel));
  }
}

TEST(Desired, AHubModelIsPulledOnceBeforeEnginesStartAndANewRevisionDoesNotStopThem) {
  LLMService s = Load("hub-pvc");
  auto first = Desired(s, Config(), {});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->engine_deployed);
  EXPECT_EQ(Find(*first, "Deployment", "qwen-engine"), nullptr);
  ASSERT_NE(Find(*first, "Job", first->pull_job), nullptr);
  ASSERT_NE(Find(*first, "PersistentVolumeClaim", "qwen-model"), nullptr);
  EXPECT_EQ(first->pull_job, "qwen-pull-" + first->model_revision);

  auto pulled = Desired(s, Config(), {.pull_complete = true});
  const Json* d = Find(*pulled, "Deployment", "qwen-engine");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->at("spec")["template"]["metadata"]["annotations"][kModelRevisionAnnotation],
            first->model_revision);

  // A new revision: a new Job; the engines keep serving the old content until it is pulled.
  LLMService next = s;
  next.spec.model.source.hub_url = "hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF@v2";
  auto pulling = Desired(next, Config(),
                         {.pull_complete = false, .engine_model_revision = first->model_revision});
  EXPECT_NE(pulling->pull_job, first->pull_job);
  const Json* still = Find(*pulling, "Deployment", "qwen-engine");
  ASSERT_NE(still, nullptr);
  EXPECT_EQ(still->at("spec")["template"]["metadata"]["annotations"][kModelRevisionAnnotation],
            first->model_revision);
  EXPECT_EQ(still->at("spec")["template"], d->at("spec")["template"]);
}

TEST(Desired, AnEmptyDirModelIsPulledByAnInitContainer) {
  auto want = Desired(Load("hub-emptydir-open"), Config(), {});
  const Json* d = Find(*want, "Deployment", "smol-engine");
  ASSERT_NE(d, nullptr);
  const Json& init = d->at("spec")["template"]["spec"]["initContainers"][0];
  EXPECT_EQ(init["args"][0], "pull");
  EXPECT_EQ(init["args"][1], "hf://HuggingFaceTB/SmolLM2-135M-Instruct-GGUF");
  EXPECT_EQ(d->at("spec")["replicas"], 0);
  EXPECT_TRUE(want->pull_job.empty());
  for (const Json& o : want->objects) EXPECT_NE(o["kind"], "NetworkPolicy");
}

// Scale from zero: the routers set /scale 0 -> 1 themselves, with rights on that one object only.
TEST(Desired, RoutersOfAnLLMServiceThatScalesToZeroMayBringItBack) {
  auto want = Desired(Load("hub-emptydir-open"), Config(), {});  // minReplicas 0, router on
  const Json& args = Find(*want, "Deployment", "smol-router")
                         ->at("spec")["template"]["spec"]["containers"][0]["args"];
  EXPECT_NE(std::find(args.begin(), args.end(), Json("--scale-from-zero=default/smol")),
            args.end());
  const Json& rules = Find(*want, "Role", "smol-router")->at("rules");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[1]["apiGroups"], Json::array({"kinfer.dev"}));
  EXPECT_EQ(rules[1]["resources"], Json::array({"llmservices/scale"}));
  EXPECT_EQ(rules[1]["resourceNames"], Json::array({"smol"}));
  EXPECT_EQ(rules[1]["verbs"], Json::array({"get", "patch"}));

  // minReplicas 1: no such flag, no such right.
  auto one = Desired(Load("hostpath-router"), Config(), {});
  const Json& args1 = Find(*one, "Deployment", "tiny-router")
                          ->at("spec")["template"]["spec"]["containers"][0]["args"];
  for (const Json& a : args1) {
    EXPECT_EQ(a.get<std::string>().find("--scale-from-zero"), std::string::npos);
  }
  EXPECT_EQ(Find(*one, "Role", "tiny-router")->at("rules").size(), 1u);
}

TEST(Desired, WithoutAnImageItSaysWhatToSet) {
  ReconcileConfig c = Config();
  c.image.clear();
  auto want = Desired(Load("hostpath-router"), c, {});
  ASSERT_FALSE(want.ok());
  EXPECT_NE(want.status().message().find("--image"), std::string::npos);
}

TEST(LLMService, AppliesTheCrdDefaultsAndNamesFieldsInErrors) {
  Json obj = Json::parse(R"({"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
      "metadata": {"name": "m", "namespace": "n"},
      "spec": {"model": {"name": "x", "source": {"pvc": {"claimName": "c"}}}}})");
  auto s = ParseLLMService(obj);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->spec.replicas, 1);
  EXPECT_TRUE(s->spec.router.enabled);
  EXPECT_EQ(s->spec.router.replicas, 2);
  EXPECT_EQ(s->spec.router.policy, "prefixAware");
  EXPECT_EQ(s->spec.engine.shutdown_timeout_seconds, 30);
  EXPECT_TRUE(s->spec.network_policy.enabled);
  EXPECT_EQ(s->spec.storage.type, "pvc");

  struct Case {
    const char* patch;
    const char* says;
  } cases[] = {
      {R"({"spec": {"engine": {"threads": "four"}}})", "spec.engine.threads: expected an integer"},
      {R"({"spec": {"engine": {"kvCacheMemory": "2 gigs"}}})", "spec.engine.kvCacheMemory"},
      {R"({"spec": {"engine": {"extraArgs": ["--port=1"]}}})", "'--port=1' is set by the operator"},
      {R"({"spec": {"model": {"source": {"hostPath": {"path": "/m"}}}}})", "exactly one of"},
      {R"({"spec": {"router": {"policy": "random"}}})", "unknown policy 'random'"},
      {R"({"spec": {"networkPolicy": {"allowFrom": [1]}}})", "spec.networkPolicy.allowFrom[0]"},
  };
  for (const Case& c : cases) {
    Json bad = obj;
    bad.merge_patch(Json::parse(c.patch));
    auto r = ParseLLMService(bad);
    ASSERT_FALSE(r.ok()) << c.patch;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("LLMService n/m"), std::string::npos);
  }
}

TEST(Quantity, ConvertsKubernetesQuantitiesToBytes) {
  // Reference: k8s.io/apimachinery resource.Quantity (binary and decimal SI suffixes, exponents).
  EXPECT_EQ(*QuantityBytes(Json("2Gi"), "q"), 2147483648);
  EXPECT_EQ(*QuantityBytes(Json("1.5G"), "q"), 1500000000);
  EXPECT_EQ(*QuantityBytes(Json("512Mi"), "q"), 536870912);
  EXPECT_EQ(*QuantityBytes(Json("1e9"), "q"), 1000000000);
  EXPECT_EQ(*QuantityBytes(Json(4096), "q"), 4096);
  EXPECT_EQ(*QuantityBytes(Json("100k"), "q"), 100000);
  for (const char* bad : {"", "Gi", "2 Gi", "2GiB", "1.2.3Gi", "-1Gi"}) {
    EXPECT_FALSE(QuantityBytes(Json(bad), "q").ok()) << bad;
  }
}

}  // namespace
}  // namespace kinfer::op
