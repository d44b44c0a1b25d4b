// Reading a replica's /metrics: Kinfer's own exposition (the text below is what `kinfer serve`
// renders, trimmed) and vLLM's names, per the Prometheus text format's rules for labels,
// escapes and special values.
#include "router/replica_metrics.h"

#include <gtest/gtest.h>

#include "server/metrics.h"

namespace kinfer::router {
namespace {

constexpr const char* kKinferServe =
    R"(# HELP kinfer:num_requests_running Number of requests in model execution batches.
# TYPE kinfer:num_requests_running gauge
kinfer:num_requests_running{model_name="stories"} 3
# HELP kinfer:num_requests_waiting Number of requests waiting to be processed.
# TYPE kinfer:num_requests_waiting gauge
kinfer:num_requests_waiting{model_name="stories"} 7
# HELP kinfer:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE kinfer:kv_cache_usage_perc gauge
kinfer:kv_cache_usage_perc{model_name="stories"} 0.4375
# TYPE kinfer:prefix_cache_hits counter
kinfer:prefix_cache_hits_total{model_name="stories"} 0
# TYPE kinfer:time_to_first_token_seconds histogram
kinfer:time_to_first_token_seconds_bucket{model_name="stories",le="0.001"} 0
kinfer:time_to_first_token_seconds_bucket{model_name="stories",le="+Inf"} 1
kinfer:time_to_first_token_seconds_sum{model_name="stories"} 0.033854902
# HELP kinfer:cache_config_info Information of the KV cache configuration.
# TYPE kinfer:cache_config_info gauge
kinfer:cache_config_info{block_size="16",num_gpu_blocks="6553",cache_dtype="F16"} 1
)";

TEST(ReplicaMetrics, ReadsKinferServe) {
  ReplicaLoad l = ParseReplicaMetrics(kKinferServe);
  ASSERT_TRUE(l.has_load());
  EXPECT_EQ(*l.running, 3);
  EXPECT_EQ(*l.waiting, 7);
  EXPECT_DOUBLE_EQ(*l.kv_usage, 0.4375);
  EXPECT_EQ(*l.block_size, 16);
  EXPECT_EQ(*l.num_blocks, 6553);
  EXPECT_EQ(l.malformed_lines, 0);
}

TEST(ReplicaMetrics, ReadsWhatOurOwnRegistryRenders) {
  // The reference is server::MetricsRegistry itself: what replicas really send, both prefixes.
  server::MetricsRegistry reg;
  reg.Gauge("num_requests_waiting", "w").Set({{"model_name", "a \"b\"\n"}}, 2);
  reg.Gauge("num_requests_running", "r").Set({{"model_name", "a \"b\"\n"}}, 5);
  reg.Gauge("kv_cache_usage_perc", "kv").Set({{"model_name", "a \"b\"\n"}}, 0.25);
  reg.Gauge("cache_config_info", "c").Set({{"block_size", "32"}, {"num_gpu_blocks", "100"}}, 1);
  ReplicaLoad l = ParseReplicaMetrics(reg.Render({"kinfer:", "vllm:"}));
  ASSERT_TRUE(l.has_load());
  EXPECT_EQ(*l.waiting, 2);  // not 4: the vllm: copy does not add up
  EXPECT_EQ(*l.running, 5);
  EXPECT_DOUBLE_EQ(*l.kv_usage, 0.25);
  EXPECT_EQ(*l.block_size, 32);
  EXPECT_EQ(l.malformed_lines, 0);
}

TEST(ReplicaMetrics, ReadsVllmNamesOldAndNew) {
  // vLLM (v0.6 to v0.9 named the KV gauge gpu_cache_usage_perc), one series per model.
  ReplicaLoad l = ParseReplicaMetrics(
      "vllm:num_requests_waiting{model_name=\"a\"} 1.0\n"
      "vllm:num_requests_waiting{model_name=\"b\"} 2.0\n"
      "vllm:num_requests_running{model_name=\"a\"} 4.0 1712345678000\n"
      "vllm:gpu_cache_usage_perc{model_name=\"a\"} 0.5\n"
      "vllm:gpu_cache_usage_perc{model_name=\"b\"} 0.75\n"
      "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"2048\",cache_dtype=\"auto\"} "
      "1.0\n");
  ASSERT_TRUE(l.has_load());
  EXPECT_EQ(*l.waiting, 3);      // counts add up over models
  EXPECT_EQ(*l.running, 4);      // the timestamp is not the value
  EXPECT_EQ(*l.kv_usage, 0.75);  // a fraction takes the largest
  EXPECT_EQ(*l.num_blocks, 2048);
}

TEST(ReplicaMetrics, NewKvNameWinsOverOld) {
  ReplicaLoad l = ParseReplicaMetrics(
      "vllm:kv_cache_usage_perc 0.1\nvllm:gpu_cache_usage_perc 0.9\n"
      "vllm:num_requests_waiting 0\nvllm:num_requests_running 0\n");
  EXPECT_DOUBLE_EQ(*l.kv_usage, 0.1);
}

TEST(ReplicaMetrics, SkipsMalformedLinesAndKeepsTheRest) {
  ReplicaLoad l = ParseReplicaMetrics(
      "kinfer:num_requests_waiting{model_name=\"x} 3\n"  // unclosed quote
      "kinfer:num_requests_waiting{model_name=\"x\"} abc\n"
      "{} 1\n"
      "kinfer:num_requests_running{model_name=\"x\", le=\"a,b}\"} 2\r\n"  // comma, brace in value
      "kinfer:num_requests_waiting NaN\n"
      "kinfer:kv_cache_usage_perc 7\n");  // clamped to 1
  EXPECT_EQ(l.malformed_lines, 3);
  EXPECT_FALSE(l.waiting.has_value());  // NaN is no value
  EXPECT_EQ(*l.running, 2);
  EXPECT_FALSE(l.has_load());
  EXPECT_DOUBLE_EQ(*l.kv_usage, 1.0);
}

TEST(ReplicaMetrics, ReadsTheLoraAdaptersInUse) {
  // The gauge as `kinfer serve --lora-modules` (and vLLM) export it: names comma-joined.
  ReplicaLoad l = ParseReplicaMetrics(
      "kinfer:num_requests_waiting 0\nkinfer:num_requests_running 2\n"
      "kinfer:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"chat,sql\","
      "waiting_lora_adapters=\"law\"} 1.7e9\n"
      "vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"chat,sql\","
      "waiting_lora_adapters=\"law\"} 1.7e9\n");
  EXPECT_EQ(l.lora_adapters, (std::vector<std::string>{"chat", "sql", "law"}));
  EXPECT_EQ(*l.max_lora, 4);
  ReplicaLoad none = ParseReplicaMetrics(
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"\",waiting_lora_adapters="
      "\"\"} 1\n");
  EXPECT_TRUE(none.lora_adapters.empty());
}

TEST(ReplicaMetrics, EmptyAndForeignTextHaveNoLoad) {
  EXPECT_FALSE(ParseReplicaMetrics("").has_load());
  EXPECT_FALSE(ParseReplicaMetrics("<html>not metrics</html>\n").has_load());
  EXPECT_FALSE(
      ParseReplicaMetrics("kinfer_router_inflight 3\nnum_requests_waiting 1\n").has_load());
}

}  // namespace
}  // namespace kinfer::router
