// Typed views of API objects, resource paths, times and backoff. References: the Kubernetes API
// reference (EndpointSlice v1, Lease v1, metav1.Time/MicroTime layouts "2006-01-02T15:04:05Z07:00"
// and "2006-01-02T15:04:05.000000Z07:00") and the REST paths kubectl -v=8 prints.
#include "k8s/objects.h"

#include <gtest/gtest.h>

#include "k8s/backoff.h"
#include "k8s/client.h"
#include "k8s/resource.h"

namespace kinfer::k8s {
namespace {

TEST(ResourceType, BuildsTheRestPathsKubectlUses) {
  EXPECT_EQ(kPods.Path("llm", "p"), "/api/v1/namespaces/llm/pods/p");
  EXPECT_EQ(kPods.Path(""), "/api/v1/pods");
  EXPECT_EQ(kDeployments.Path("llm", "d", "scale"),
            "/apis/apps/v1/namespaces/llm/deployments/d/scale");
  EXPECT_EQ(kNamespaces.Path("ignored", "kube-system"), "/api/v1/namespaces/kube-system");
  EXPECT_EQ(kLeases.ApiVersion(), "coordination.k8s.io/v1");
  EXPECT_EQ(kServices.ApiVersion(), "v1");
  EXPECT_EQ(kEndpointSlices.GroupResource(), "endpointslices.discovery.k8s.io");
}

TEST(UrlQueryEscape, EscapesSelectorsSafely) {
  EXPECT_EQ(UrlQueryEscape("app.kubernetes.io/name=kinfer,tier!=x"),
            "app.kubernetes.io%2Fname%3Dkinfer%2Ctier%21%3Dx");
}

TEST(ObjectMeta, ParsesOwnersLabelsAndTheControllerRef) {
  Json obj = Json::parse(R"({
    "metadata": {"name": "qwen-engine-abc", "namespace": "llm", "uid": "u1",
                 "resourceVersion": "42", "generation": 3,
                 "labels": {"app": "kinfer"}, "annotations": {"a": "b"},
                 "ownerReferences": [
                   {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "u0"},
                   {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService", "name": "qwen",
                    "uid": "u9", "controller": true, "blockOwnerDeletion": true}]}})");
  auto m = ParseObjectMeta(obj, "deployment");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "qwen-engine-abc");
  EXPECT_EQ(m->generation, 3);
  EXPECT_EQ(m->labels.at("app"), "kinfer");
  ASSERT_NE(m->ControllerRef(), nullptr);
  EXPECT_EQ(m->ControllerRef()->uid, "u9");
  EXPECT_EQ(m->ControllerRef()->ToJson(),
            Json::parse(R"({"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
                            "name": "qwen", "uid": "u9", "controller": true,
                            "blockOwnerDeletion": true})"));
}

TEST(ObjectMeta, WrongTypesAreNamedByPath) {
  auto m = ParseObjectMeta(Json::parse(R"({"metadata": {"labels": {"a": 1}}})"), "obj");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "obj.metadata.labels.a: expected a string, got integer");
  auto g = ParseObjectMeta(Json::parse(R"({"metadata": {"generation": "1"}})"), "obj");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message(), "obj.metadata.generation: expected an integer, got string");
}

TEST(EndpointSlice, ParsesWhatTheEndpointSliceControllerWrites) {
  // As kube-controller-manager writes a slice for a Service with one ready and one terminating
  // pod (k8s.io/api/discovery/v1).
  Json obj = Json::parse(R"({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "qwen-engine-7xk2p", "namespace": "llm",
                 "labels": {"kubernetes.io/service-name": "qwen-engine",
                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
    "addressType": "IPv4",
    "endpoints": [
      {"addresses": ["10.244.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
       "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "llm", "name": "qwen-0", "uid": "p0"}},
      {"addresses": ["10.244.0.6"], "conditions": {"ready": false, "serving": true, "terminating": true}},
      {"addresses": ["10.244.0.7"], "conditions": {}}],
    "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}, {"name": "metrics"}]})");
  auto s = ParseEndpointSlice(obj, "slice");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->service_name(), "qwen-engine");
  EXPECT_EQ(s->address_type, "IPv4");
  ASSERT_EQ(s->endpoints.size(), 3u);
  EXPECT_EQ(s->endpoints[0].conditions.ready, true);
  EXPECT_EQ(s->endpoints[0].target_name, "qwen-0");
  EXPECT_EQ(s->endpoints[1].conditions.terminating, true);
  EXPECT_FALSE(s->endpoints[2].conditions.ready.has_value());
  ASSERT_EQ(s->ports.size(), 2u);
  EXPECT_EQ(s->ports[0].port, 8000);
  EXPECT_FALSE(s->ports[1].port.has_value());
  auto bad = ParseEndpointSlice(Json::parse(R"({"endpoints": [{"addresses": "x"}]})"), "slice");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "slice.endpoints[0].addresses: expected a list, got string");
}

TEST(Lease, ParsesTheSpec) {
  auto l = ParseLease(Json::parse(R"({"metadata": {"name": "kinfer-operator"},
      "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
               "renewTime": "2026-11-27T11:00:00.123456Z", "leaseTransitions": 2}})"),
                      "lease");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->spec.holder_identity, "pod-a");
  EXPECT_EQ(l->spec.lease_duration_seconds, 15);
  EXPECT_EQ(l->spec.lease_transitions, 2);
}

TEST(Time, FormatsAndParsesTheApiLayouts) {
  using namespace std::chrono;
  // 2026-11-27T11:00:00Z is 1795777200 s after the epoch (date -u -d ... +%s).
  system_clock::time_point t{seconds(1795777200) + microseconds(123456)};
  EXPECT_EQ(FormatTime(t), "2026-11-27T11:00:00Z");
  EXPECT_EQ(FormatMicroTime(t), "2026-11-27T11:00:00.123456Z");
  EXPECT_EQ(*ParseTime("2026-11-27T11:00:00.123456Z"), t);
  EXPECT_EQ(*ParseTime("2026-11-27T11:00:00Z"), system_clock::time_point(seconds(1795777200)));
  EXPECT_EQ(*ParseTime("2026-11-27T12:30:00+01:30"), system_clock::time_point(seconds(1795777200)));
  EXPECT_EQ(*ParseTime("1970-01-01T00:00:00.5Z"), system_clock::time_point(milliseconds(500)));
  for (const char* bad : {"", "2026-11-27", "2026-13-01T00:00:00Z", "2026-11-27T11:00:00",
                          "2026-11-27T11:00:00.Z", "2026-11-27T11:00:00Zjunk"}) {
    EXPECT_FALSE(ParseTime(bad).ok()) << bad;
  }
}

TEST(Condition, RoundTripsThroughJson) {
  Condition c{"Available", "True", "ReplicasReady", "2/2 ready", "2026-11-27T11:00:00Z", 4};
  auto back = ParseConditions(Json::array({c.ToJson()}), "status.conditions");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], c);
}

TEST(Backoff, GrowsWithJitterUpToTheCapAndResets) {
  Backoff b({.initial = std::chrono::milliseconds(100),
             .max = std::chrono::milliseconds(1000),
             .factor = 2.0,
             .jitter = 0.5});
  auto d1 = b.Next();
  EXPECT_GE(d1.count(), 100);
  EXPECT_LE(d1.count(), 150);
  auto d2 = b.Next();
  EXPECT_GE(d2.count(), 200);
  EXPECT_LE(d2.count(), 300);
  for (int i = 0; i < 10; ++i) EXPECT_LE(b.Next().count(), 1000);
  EXPECT_EQ(b.current().count(), 1000);
  b.Reset();
  EXPECT_LE(b.Next().count(), 150);
  // Jitter spreads clients: 200 draws of the first wait are not all equal.
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    Backoff fresh({.initial = std::chrono::milliseconds(1000), .max = std::chrono::seconds(30)});
    seen.insert(fresh.Next().count());
  }
  EXPECT_GT(seen.size(), 50u);
}

TEST(LabelSelector, JoinsLabelsInKeyOrder) {
  EXPECT_EQ(LabelSelector({{"b", "2"}, {"a", "1"}}), "a=1,b=2");
  EXPECT_EQ(LabelSelector({}), "");
}

}  // namespace
}  // namespace kinfer::k8s
