// EndpointSlices as the discovery.k8s.io/v1 API defines them (the JSON below is what a real
// kube-apiserver serves for a Deployment's Service, trimmed, read through the shared client's
// k8s::ParseEndpointSlice): conditions, ports by name or number, slices split and duplicated
// during updates, and unusable ones skipped with a reason.
#include "router/endpoint_slices.h"

#include <gtest/gtest.h>

namespace kinfer::router {
namespace {

// The slices as the informer hands them over: parsed by the shared client.
std::vector<k8s::EndpointSlice> Parsed(std::initializer_list<const Json*> objects) {
  std::vector<k8s::EndpointSlice> out;
  for (const Json* o : objects) {
    auto s = k8s::ParseEndpointSlice(*o, "test");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) out.push_back(std::move(*s));
  }
  return out;
}

Json Slice(const std::string& name, Json endpoints,
           Json ports = Json::parse(
               R"([{"name":"http","port":8000,"protocol":"TCP"},
                                                             {"name":"metrics","port":9090,"protocol":"TCP"}])")) {
  return Json{{"apiVersion", "discovery.k8s.io/v1"},
              {"kind", "EndpointSlice"},
              {"metadata",
               {{"name", name},
                {"namespace", "models"},
                {"labels", {{"kubernetes.io/service-name", "qwen"}}}}},
              {"addressType", "IPv4"},
              {"endpoints", std::move(endpoints)},
              {"ports", std::move(ports)}};
}

Json Endpoint(const std::string& ip, Json conditions, const std::string& pod = "") {
  Json e{{"addresses", {ip}}, {"conditions", std::move(conditions)}, {"nodeName", "node-1"}};
  if (!pod.empty()) e["targetRef"] = {{"kind", "Pod"}, {"name", pod}, {"namespace", "models"}};
  return e;
}

TEST(EndpointSlices, ParsesTheFlag) {
  auto s = ParseSliceSource("models/qwen-engine");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->namespace_, "models");
  EXPECT_EQ(s->service, "qwen-engine");
  EXPECT_EQ(s->port, "");
  EXPECT_EQ(ParseSliceSource("a/b:metrics")->port, "metrics");
  for (const char* bad :
       {"qwen", "/qwen", "models/", "Models/qwen", "models/qwen:", "a/b_c", "a/-b"}) {
    EXPECT_FALSE(ParseSliceSource(bad).ok()) << bad;
  }
}

TEST(EndpointSlices, ReadyAndTerminatingAsTheConditionsSay) {
  Json s =
      Slice("qwen-abc",
            Json::array({
                Endpoint("10.0.0.1", {{"ready", true}, {"serving", true}, {"terminating", false}},
                         "qwen-1"),
                Endpoint("10.0.0.2", {{"ready", false}, {"serving", true}, {"terminating", true}},
                         "qwen-2"),
                Endpoint("10.0.0.3", {{"ready", false}}),
                Endpoint("10.0.0.4", Json::object()),  // unknown: ready
            }));
  auto got = EndpointsFromSlices(Parsed({&s}), "");
  ASSERT_EQ(got.endpoints.size(), 4u);
  EXPECT_TRUE(got.problems.empty());
  EXPECT_EQ(got.endpoints[0].endpoint.ToString(), "10.0.0.1:8000");
  EXPECT_EQ(got.endpoints[0].pod, "qwen-1");
  EXPECT_TRUE(got.endpoints[0].ready && !got.endpoints[0].terminating);
  EXPECT_TRUE(got.endpoints[1].terminating);
  EXPECT_FALSE(got.endpoints[2].ready);
  EXPECT_TRUE(got.endpoints[3].ready && !got.endpoints[3].terminating);
}

TEST(EndpointSlices, PortByNameNumberOrTheOnlyOne) {
  Json e = Json::array({Endpoint("10.0.0.1", {{"ready", true}})});
  Json two = Slice("a", e);
  EXPECT_EQ(EndpointsFromSlices(Parsed({&two}), "").endpoints[0].endpoint.port, 8000);  // "http"
  EXPECT_EQ(EndpointsFromSlices(Parsed({&two}), "metrics").endpoints[0].endpoint.port, 9090);
  EXPECT_EQ(EndpointsFromSlices(Parsed({&two}), "9090").endpoints[0].endpoint.port, 9090);
  auto none = EndpointsFromSlices(Parsed({&two}), "grpc");
  EXPECT_TRUE(none.endpoints.empty());
  ASSERT_EQ(none.problems.size(), 1u);
  EXPECT_NE(none.problems[0].find("no port grpc"), std::string::npos);
  Json only = Slice("b", e, Json::parse(R"([{"name":"","port":8080}])"));
  EXPECT_EQ(EndpointsFromSlices(Parsed({&only}), "").endpoints[0].endpoint.port, 8080);
  Json ambiguous = Slice("c", e, Json::parse(R"([{"name":"a","port":1},{"name":"b","port":2}])"));
  auto amb = EndpointsFromSlices(Parsed({&ambiguous}), "");
  EXPECT_TRUE(amb.endpoints.empty());
  EXPECT_NE(amb.problems[0].find("none named \"http\""), std::string::npos);
}

TEST(EndpointSlices, AnAddressInTwoSlicesCountsOnceAndRoutableWins) {
  Json old_slice = Slice(
      "qwen-old", Json::array({Endpoint("10.0.0.1", {{"ready", false}, {"terminating", true}})}));
  Json new_slice = Slice("qwen-new", Json::array({Endpoint("10.0.0.1", {{"ready", true}}),
                                                  Endpoint("10.0.0.9", {{"ready", true}})}));
  auto got = EndpointsFromSlices(Parsed({&old_slice, &new_slice}), "");
  ASSERT_EQ(got.endpoints.size(), 2u);
  EXPECT_TRUE(got.endpoints[0].ready && !got.endpoints[0].terminating);
}

TEST(EndpointSlices, EmptyAndUnusableSlicesAreSkippedWithAReason) {
  Json empty = Slice("qwen-empty", nullptr);  // a Service with no pods yet
  Json fqdn = Slice("ext", Json::array({Endpoint("replica-0.example.com", {{"ready", true}})}));
  fqdn["addressType"] = "FQDN";
  Json bad_type = Slice("weird", Json::array({Endpoint("x", {})}));
  bad_type["addressType"] = "Unix";
  Json v6 = Slice("v6", Json::array({Endpoint("fd00::5", {{"ready", true}})}));
  v6["addressType"] = "IPv6";
  auto got = EndpointsFromSlices(Parsed({&empty, &fqdn, &bad_type, &v6}), "");
  ASSERT_EQ(got.endpoints.size(), 2u);
  EXPECT_EQ(got.endpoints[0].endpoint.ToString(), "[fd00::5]:8000");
  EXPECT_EQ(got.endpoints[1].endpoint.ToString(), "replica-0.example.com:8000");
  ASSERT_EQ(got.problems.size(), 1u);
  EXPECT_NE(got.problems[0].find("weird"), std::string::npos);
}

}  // namespace
}  // namespace kinfer::router
