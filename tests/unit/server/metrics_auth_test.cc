// Prometheus exposition (the text format's rules: _total counters, cumulative le buckets,
// escaped labels, one HELP/TYPE per prefix) and API key handling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "server/auth.h"
#include "server/metrics.h"

namespace kinfer::server {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, RendersCountersGaugesAndCumulativeHistograms) {
  MetricsRegistry reg;
  auto& c = reg.Counter("request_success", "Requests.");
  auto& g = reg.Gauge("num_requests_running", "Running.");
  auto& h = reg.Histogram("latency_seconds", "Latency.", {0.1, 1.0});
  Labels l{{"model_name", "m\"x"}};
  c.Add({l[0], {"finished_reason", "stop"}}, 2);
  g.Set(l, 3);
  h.Observe(l, 0.05);
  h.Observe(l, 0.5);
  h.Observe(l, 5);
  std::string out = reg.Render({"kinfer:", "vllm:"});
  EXPECT_THAT(out, HasSubstr("# TYPE kinfer:request_success counter\n"));
  EXPECT_THAT(
      out,
      HasSubstr(R"(kinfer:request_success_total{model_name="m\"x",finished_reason="stop"} 2)"));
  EXPECT_THAT(out, HasSubstr(R"(vllm:num_requests_running{model_name="m\"x"} 3)"));
  EXPECT_THAT(out, HasSubstr(R"(kinfer:latency_seconds_bucket{model_name="m\"x",le="0.1"} 1)"));
  EXPECT_THAT(out, HasSubstr(R"(kinfer:latency_seconds_bucket{model_name="m\"x",le="1"} 2)"));
  EXPECT_THAT(out, HasSubstr(R"(kinfer:latency_seconds_bucket{model_name="m\"x",le="+Inf"} 3)"));
  EXPECT_THAT(out, HasSubstr(R"(kinfer:latency_seconds_count{model_name="m\"x"} 3)"));
  EXPECT_THAT(out, HasSubstr(R"(kinfer:latency_seconds_sum{model_name="m\"x"} 5.55)"));
}

TEST(ApiKeys, FromFlagsFilesAndEnvironment) {
  std::string path = ::testing::TempDir() + "/keys.txt";
  std::ofstream(path) << "# comment\n  file-key-1234  \n\n";
  setenv("KINFER_API_KEY", "env-key-1234,env-key-5678", 1);
  auto k = ApiKeys::Load({"flag-key-1234"}, {path});
  unsetenv("KINFER_API_KEY");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->size(), 4u);
  for (const char* ok : {"flag-key-1234", "file-key-1234", "env-key-5678"})
    EXPECT_TRUE(k->Check(ok));
  for (const char* bad : {"", "flag-key-123", "flag-key-12345", "FILE-KEY-1234"})
    EXPECT_FALSE(k->Check(bad));
  EXPECT_EQ(ApiKeys::FromHeaders("Bearer abc", ""), "abc");
  EXPECT_EQ(ApiKeys::FromHeaders("bearer  abc ", ""), "abc");
  EXPECT_EQ(ApiKeys::FromHeaders("Basic abc", "xyz"), "xyz");  // not base64 of user:password
  // A browser's Basic credentials (the playground): the password is the key, the user is any.
  // base64("anyone:flag-key-1234") and base64(":k:e:y") as Python's base64 module gives them.
  EXPECT_EQ(ApiKeys::FromHeaders("Basic YW55b25lOmZsYWcta2V5LTEyMzQ=", ""), "flag-key-1234");
  EXPECT_EQ(ApiKeys::FromHeaders("basic Oms6ZTp5", ""), "k:e:y");
  EXPECT_TRUE(k->Check(ApiKeys::FromHeaders("Basic YW55b25lOmZsYWcta2V5LTEyMzQ=", "")));
  EXPECT_THAT(ApiKeys::Load({"short"}, {}).status().message(), HasSubstr("at least 8"));
  EXPECT_THAT(ApiKeys::Load({}, {"/no/such/file"}).status().message(), HasSubstr("/no/such/file"));
}

}  // namespace
}  // namespace kinfer::server
