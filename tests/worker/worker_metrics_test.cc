// WorkerMetrics (vLLM's finish reasons, counters from cumulative scheduler values, rank health),
// the periodic stats line and the loading-progress formatting.
#include "worker/server/worker_metrics.h"

#include <chrono>
#include <string>

#include "common/metrics/metrics.h"
#include "gtest/gtest.h"
#include "tests/testing/promtool.h"
#include "worker/model/load_progress.h"
#include "worker/server/stats_logger.h"

namespace tessera {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(WorkerMetricsTest, FinishReasonsUseVllmValues) {
  metrics::Registry r;
  WorkerMetrics m(r, {.model_name = "m", .max_model_len = 100, .tp_size = 2});
  m.OnFinished(FinishReason::kEos, 1.0, 0.1, 5, 7);
  m.OnFinished(FinishReason::kStop, 1.0, 0.1, 5, 7);
  m.OnFinished(FinishReason::kLength, 1.0, 0.1, 5, 7);
  m.OnFinished(FinishReason::kAbort, 1.0, 0.1, 5, 7);
  m.OnFinished(FinishReason::kNone, 1.0, 0.1, 5, 7);  // not finished: ignored
  const std::string text = r.Expose();
  const std::string p = "vllm:request_success_total{model_name=\"m\",engine=\"0\",";
  EXPECT_TRUE(Has(text, p + "finished_reason=\"stop\"} 2")) << text;
  EXPECT_TRUE(Has(text, p + "finished_reason=\"length\"} 1")) << text;
  EXPECT_TRUE(Has(text, p + "finished_reason=\"abort\"} 1")) << text;
  EXPECT_TRUE(Has(text, p + "finished_reason=\"error\"} 0")) << text;
  EXPECT_TRUE(Has(text, "vllm:e2e_request_latency_seconds_count{model_name=\"m\",engine=\"0\"} 4"));
  // Token histograms: vLLM's 1-2-5 buckets up to max_model_len.
  EXPECT_TRUE(
      Has(text, "vllm:request_prompt_tokens_bucket{model_name=\"m\",engine=\"0\",le=\"100\"} 4"));
  TESSERA_EXPECT_PROMTOOL_OK(text);
}

TEST(WorkerMetricsTest, PublishTurnsCumulativeValuesIntoCounters) {
  metrics::Registry r;
  WorkerMetrics m(r, {.model_name = "m", .max_model_len = 16, .tp_size = 2});
  WorkerStateSample s;
  s.running = 3;
  s.kv_blocks_total = 10;
  s.kv_blocks_used = 4;
  s.kv_blocks_cached = 2;
  s.kv_blocks_free = 4;
  s.prefix_cache_queries = 100;
  s.prefix_cache_hits = 40;
  s.num_preemptions = 2;
  m.Publish(s);
  s.prefix_cache_queries = 150;
  m.Publish(s);
  s.healthy = false;
  m.Publish(s);
  const std::string text = r.Expose();
  EXPECT_TRUE(Has(text, "vllm:prefix_cache_queries_total{model_name=\"m\",engine=\"0\"} 150"));
  EXPECT_TRUE(Has(text, "vllm:prefix_cache_hits_total{model_name=\"m\",engine=\"0\"} 40"));
  EXPECT_TRUE(Has(text, "vllm:num_preemptions_total{model_name=\"m\",engine=\"0\"} 2"));
  EXPECT_TRUE(Has(text, "vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"0\"} 0.4"));
  EXPECT_TRUE(Has(text, "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3"));
  EXPECT_TRUE(Has(text, "tessera_kv_blocks{model_name=\"m\",state=\"cached\"} 2"));
  EXPECT_TRUE(Has(text, "tessera_rank_healthy{model_name=\"m\",rank=\"1\"} 0")) << text;
}

TEST(StatsLoggerTest, LogsVllmsLineOncePerInterval) {
  using Clock = StatsLogger::Clock;
  const Clock::time_point t0 = Clock::now();
  StatsLogger logger(std::chrono::seconds(10), t0);
  logger.AddTokens(500, 100);
  StatsLogger::State st{.running = 4,
                        .waiting = 1,
                        .kv_usage = 0.25,
                        .prefix_cache_queries = 200,
                        .prefix_cache_hits = 50};
  EXPECT_EQ(logger.MaybeLog(t0 + std::chrono::seconds(5), st), "");  // not yet
  EXPECT_EQ(logger.MaybeLog(t0 + std::chrono::seconds(10), st),
            "Avg prompt throughput: 50.0 tokens/s, Avg generation throughput: 10.0 tokens/s, "
            "Running: 4 reqs, Waiting: 1 reqs, KV cache usage: 25.0%, Prefix cache hit rate: "
            "25.0%");
  // The next interval's hit rate is its own: 100 queries, 100 hits.
  st.prefix_cache_queries = 300;
  st.prefix_cache_hits = 150;
  EXPECT_NE(
      logger.MaybeLog(t0 + std::chrono::seconds(20), st).find("Prefix cache hit rate: 100.0%"),
      std::string::npos);
}

TEST(LoadProgressTest, HumanUnits) {
  EXPECT_EQ(HumanBytes(12), "12 B");
  EXPECT_EQ(HumanBytes(3 * 1024 * 1024), "3.0 MiB");
  EXPECT_EQ(HumanBytes(int64_t{131} << 30), "131.0 GiB");
  EXPECT_EQ(HumanDuration(std::chrono::milliseconds(850)), "850 ms");
  EXPECT_EQ(HumanDuration(std::chrono::milliseconds(12300)), "12.3 s");
  EXPECT_EQ(HumanDuration(std::chrono::seconds(137)), "2 min 17 s");
}

}  // namespace
}  // namespace tessera
