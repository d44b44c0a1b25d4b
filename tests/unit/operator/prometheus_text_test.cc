// operator/prometheus_text.h against the exposition format's own examples (the Prometheus docs'
// "Text-based format" section) and what kinfer serve and kinfer router actually print.
#include "operator/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kinfer::op {
namespace {

TEST(PrometheusText, ReadsTheFormatsOwnExample) {
  // From the exposition format documentation.
  const char* text = R"(# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
)";
  PromText m = ParsePrometheusText(text);
  EXPECT_EQ(m.malformed_lines, 0);
  ASSERT_EQ(m.samples.size(), 8u);
  EXPECT_EQ(*m.Sum("http_requests_total"), 1030);
  EXPECT_EQ(*m.Sum("http_requests_total", {{"code", "400"}}), 3);
  EXPECT_EQ(*m.samples[2].Label("path"), "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(*m.samples[2].Label("error"), "Cannot find file:\n\"FILE.TXT\"");
  EXPECT_DOUBLE_EQ(m.samples[2].value, 1.458255915e9);
  EXPECT_EQ(*m.Sum("metric_without_timestamp_and_labels"), 12.47);
  EXPECT_TRUE(std::isinf(m.samples[4].value));
  EXPECT_EQ(*m.Sum("http_request_duration_seconds_bucket", {{"le", "+Inf"}}), 144320);
  EXPECT_FALSE(m.Sum("absent").has_value());
  EXPECT_FALSE(m.Sum("http_requests_total", {{"code", "500"}}).has_value());
}

TEST(PrometheusText, ReadsKinfersOwnNames) {
  const char* text =
      "kinfer:num_requests_waiting{model_name=\"qwen\"} 3\n"
      "kinfer:num_requests_running{model_name=\"qwen\"} 5\r\n"
      "kinfer:kv_cache_usage_perc{model_name=\"qwen\"} 0.25\n"
      "kinfer_router_inflight{model=\"qwen\"} 7\n"
      "kinfer_router_held{model=\"qwen\"} 0\n"
      "kinfer_router_backend_inflight{backend=\"10.0.0.5:8000\"} 4\n"
      "kinfer_router_backend_inflight{backend=\"10.0.0.6:8000\"} 3\n";
  PromText m = ParsePrometheusText(text);
  EXPECT_EQ(m.malformed_lines, 0);
  EXPECT_EQ(*m.Sum("kinfer:num_requests_running"), 5);
  EXPECT_EQ(*m.Sum("kinfer:kv_cache_usage_perc"), 0.25);
  EXPECT_EQ(*m.Sum("kinfer_router_backend_inflight", {{"backend", "10.0.0.6:8000"}}), 3);
  EXPECT_EQ(*m.Sum("kinfer_router_backend_inflight"), 7);
}

TEST(PrometheusText, SkipsAndCountsMalformedLines) {
  const char* text =
      "good 1\n"
      "bad{x=\"unterminated} 2\n"
      "bad{x=unquoted} 2\n"
      "bad{x=\"a\" 2\n"
      "bad{x=\"\\q\"} 2\n"
      "9starts_with_digit 1\n"
      "no_value\n"
      "bad_value abc\n"
      "trailing 1 2 3\n"
      "also_good{a=\"1\",} 2\n"
      "NaN_sample NaN\n";
  PromText m = ParsePrometheusText(text);
  EXPECT_EQ(m.malformed_lines, 8);
  EXPECT_EQ(*m.Sum("good"), 1);
  EXPECT_EQ(*m.Sum("also_good"), 2);              // a trailing comma is allowed
  EXPECT_FALSE(m.Sum("NaN_sample").has_value());  // NaN carries no number to add
}

TEST(PrometheusText, StopsAtTheSampleLimit) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "m " + std::to_string(i) + "\n";
  PromText m = ParsePrometheusText(text, 10);
  EXPECT_EQ(m.samples.size(), 10u);
  EXPECT_TRUE(m.truncated);
}

}  // namespace
}  // namespace kinfer::op
