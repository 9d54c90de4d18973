// The metrics registry: exact exposition, escaping, histogram buckets, concurrency, callbacks
// and promtool on a sample output.
#include "common/metrics/metrics.h"

#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/promtool.h"

namespace tessera::metrics {
namespace {

TEST(MetricsTest, CounterAndGaugeExpositionIsExact) {
  Registry r;
  auto& c = r.AddCounter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
                         {"model_name", "engine"});
  c.Labels({"llama", "0"}).Inc(5);
  c.Labels({"llama", "0"}).Inc();
  auto& g = r.AddGauge("tessera_kv_blocks_free", "Free KV blocks.");
  g.Labels({}).Set(12.5);
  EXPECT_EQ(r.Expose(),
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
            "# TYPE vllm:prompt_tokens_total counter\n"
            "vllm:prompt_tokens_total{model_name=\"llama\",engine=\"0\"} 6\n"
            "# HELP tessera_kv_blocks_free Free KV blocks.\n"
            "# TYPE tessera_kv_blocks_free gauge\n"
            "tessera_kv_blocks_free 12.5\n");
}

TEST(MetricsTest, FamilyWithoutChildrenIsNotExposed) {
  Registry r;
  r.AddCounter("a_total", "A.", {"x"});
  EXPECT_EQ(r.Expose(), "");
}

TEST(MetricsTest, ChildrenAreSortedByLabelValuesAndReferencesStayValid) {
  Registry r;
  auto& f = r.AddCounter("vllm:request_success_total", "Requests.", {"finished_reason"});
  Counter& stop = f.Labels({"stop"});
  for (const char* reason : {"length", "abort", "error"}) f.Labels({reason});
  stop.Inc(3);
  EXPECT_EQ(&stop, &f.Labels({"stop"}));
  EXPECT_EQ(r.Expose(),
            "# HELP vllm:request_success_total Requests.\n"
            "# TYPE vllm:request_success_total counter\n"
            "vllm:request_success_total{finished_reason=\"abort\"} 0\n"
            "vllm:request_success_total{finished_reason=\"error\"} 0\n"
            "vllm:request_success_total{finished_reason=\"length\"} 0\n"
            "vllm:request_success_total{finished_reason=\"stop\"} 3\n");
}

TEST(MetricsTest, EscapesHelpAndLabelValues) {
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");  // quotes stay in HELP
  EXPECT_EQ(EscapeLabelValue("a\\b\nc\"d"), "a\\\\b\\nc\\\"d");
  Registry r;
  r.AddGauge("g", "line one\nback\\slash", {"path"}).Labels({"C:\\x \"q\"\n"}).Set(1);
  EXPECT_EQ(r.Expose(),
            "# HELP g line one\\nback\\\\slash\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\x \\\"q\\\"\\n\"} 1\n");
}

TEST(MetricsTest, FormatsValues) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(2560), "2560");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(std::stod(FormatValue(1e-9)), 1e-9);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto& h = r.AddHistogram("vllm:e2e_request_latency_seconds", "E2E latency.", {"model_name"},
                           {0.5, 1, 2.5});
  Histogram& m = h.Labels({"m"});
  for (double v : {0.25, 0.5, 0.75, 1.0, 3.0, 100.0}) m.Observe(v);
  EXPECT_EQ(r.Expose(),
            "# HELP vllm:e2e_request_latency_seconds E2E latency.\n"
            "# TYPE vllm:e2e_request_latency_seconds histogram\n"
            "vllm:e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"0.5\"} 2\n"
            "vllm:e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"1\"} 4\n"
            "vllm:e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"2.5\"} 4\n"
            "vllm:e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 6\n"
            "vllm:e2e_request_latency_seconds_sum{model_name=\"m\"} 105.5\n"
            "vllm:e2e_request_latency_seconds_count{model_name=\"m\"} 6\n");
}

TEST(MetricsTest, HistogramWithoutLabelsAndEdgeValues) {
  Registry r;
  Histogram& h =
      r.AddHistogram("h", "H.", {}, {1, 2, std::numeric_limits<double>::infinity()}).Labels({});
  EXPECT_EQ(h.bounds().size(), 2u);  // the trailing +Inf is implicit
  h.Observe(-5);                     // below the first bound: first bucket
  h.Observe(2);                      // on a bound: that bucket (le is <=)
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(r.Expose(),
            "# HELP h H.\n# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\nh_bucket{le=\"+Inf\"} 3\n"
            "h_sum NaN\nh_count 3\n");
}

TEST(MetricsTest, VllmBuckets) {
  EXPECT_EQ(buckets::OneTwoFive(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(buckets::OneTwoFive(4096).back(), 2000);
  EXPECT_EQ(buckets::TimeToFirstToken().size(), 22u);
  EXPECT_EQ(buckets::InterTokenLatency().size(), 19u);
  EXPECT_EQ(buckets::RequestLatency().size(), 21u);
  EXPECT_EQ(buckets::RequestLatency().back(), 7680.0);
  EXPECT_EQ(buckets::IterationTokens().front(), 1);
  EXPECT_EQ(buckets::Exponential(0.001, 2, 3), (std::vector<double>{0.001, 0.002, 0.004}));
}

TEST(MetricsTest, ConcurrentUpdatesGiveExactTotals) {
  Registry r;
  Counter& c = r.AddCounter("c_total", "C.").Labels({});
  Gauge& g = r.AddGauge("g", "G.").Labels({});
  Histogram& h = r.AddHistogram("h", "H.", {}, {1, 10}).Labels({});
  auto& per_thread = r.AddCounter("p_total", "P.", {"t"});
  constexpr int kThreads = 4;
  constexpr int kIters = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Children created concurrently with other threads' updates and scrapes.
      Counter& mine = per_thread.Labels({std::to_string(t)});
      for (int i = 0; i < kIters; ++i) {
        c.Inc();
        g.Add(i % 2 == 0 ? 2 : -1);
        h.Observe(i % 3);  // 0, 1, 2: two thirds in le=1
        mine.Inc();
        if (i % 20000 == 0) (void)r.Expose();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.Value(), kThreads * kIters);
  EXPECT_EQ(g.Value(), kThreads * kIters / 2);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kIters));
  EXPECT_EQ(s.cumulative[0],
            static_cast<uint64_t>(kThreads * ((kIters + 2) / 3 + (kIters + 1) / 3)));
  EXPECT_EQ(s.sum,
            kThreads * (0.0 * ((kIters + 2) / 3) + 1.0 * ((kIters + 1) / 3) + 2.0 * (kIters / 3)));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(per_thread.Labels({std::to_string(t)}).Value(), kIters);
  }
}

TEST(MetricsTest, CallbacksAreEvaluatedAtScrapeTime) {
  Registry r;
  int running = 3;
  auto& f =
      r.AddCallback(MetricType::kGauge, "vllm:num_requests_running", "Running.", {"model_name"});
  f.Set({"m"}, [&running] { return static_cast<double>(running); });
  auto& total = r.AddCallback(MetricType::kCounter, "x_total", "X.");
  total.Set({}, [] { return 7.0; });
  EXPECT_EQ(r.Expose(),
            "# HELP vllm:num_requests_running Running.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            "vllm:num_requests_running{model_name=\"m\"} 3\n"
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 7\n");
  running = 0;
  f.Set({"m"}, [&running] { return static_cast<double>(running) + 1; });  // replaces
  EXPECT_NE(r.Expose().find("vllm:num_requests_running{model_name=\"m\"} 1\n"), std::string::npos);
  f.Remove({"m"});
  EXPECT_EQ(r.Expose().find("vllm:num_requests_running"), std::string::npos);
}

TEST(MetricsTest, CallbackMayUseTheRegistry) {
  // Callbacks run outside the registry's locks: one may create a child or read another metric.
  Registry r;
  auto& c = r.AddCounter("c_total", "C.", {"k"});
  r.AddCallback(MetricType::kGauge, "g", "G.").Set({}, [&c] {
    return c.Labels({"made-in-callback"}).Value() + 1;
  });
  EXPECT_NE(r.Expose().find("g 1\n"), std::string::npos);
}

TEST(MetricsDeathTest, ProgrammingErrorsAbort) {
  EXPECT_DEATH(
      {
        Registry r;
        r.AddCounter("a_total", "A.");
        r.AddGauge("a_total", "again");
      },
      "added twice");
  EXPECT_DEATH(Registry().AddGauge("1abc", "bad"), "invalid metric name");
  EXPECT_DEATH(Registry().AddGauge("g", "G.", {"__x"}), "invalid label name");
  EXPECT_DEATH(Registry().AddHistogram("h", "H.", {"le"}, {1}), "'le'");
  EXPECT_DEATH(Registry().AddHistogram("h", "H.", {}, {2, 1}), "increase strictly");
  EXPECT_DEATH(Registry().AddCounter("c_total", "C.", {"a"}).Labels({}), "got 0 values");
  EXPECT_DEATH(Registry().AddCounter("c_total", "C.").Labels({}).Inc(-1), "only goes up");
}

TEST(MetricsTest, PromtoolAcceptsASampleExposition) {
  Registry r;
  const std::vector<std::string> labels = {"model_name", "engine"};
  r.AddCounter("vllm:generation_tokens_total", "Generation tokens.", labels)
      .Labels({"llama \"3\"\\8b\n", "0"})
      .Inc(42);
  auto& success = r.AddCounter("vllm:request_success_total", "Requests.",
                               {"model_name", "engine", "finished_reason"});
  for (const char* reason : {"stop", "length", "abort"}) success.Labels({"m", "0", reason}).Inc();
  r.AddGauge("vllm:kv_cache_usage_perc", "KV-cache usage.\nOne means 100%.", labels)
      .Labels({"m", "0"})
      .Set(0.25);
  Histogram& ttft = r.AddHistogram("vllm:time_to_first_token_seconds", "TTFT.", labels,
                                   buckets::TimeToFirstToken())
                        .Labels({"m", "0"});
  for (double v : {0.0005, 0.03, 1.5, 5000.0}) ttft.Observe(v);
  r.AddHistogram("tessera_engine_step_seconds", "Step time.", {}, buckets::Exponential(1e-4, 2, 16))
      .Labels({})
      .Observe(0.002);
  r.AddCallback(MetricType::kGauge, "tessera_rank_healthy", "Rank health.", {"rank"})
      .Set({"1"}, [] { return 1.0; });
  TESSERA_EXPECT_PROMTOOL_OK(r.Expose());
}

TEST(MetricsTest, PromtoolCheckCanFail) {
  // The check above is worth something only if a broken exposition fails it.
  const std::string promtool = testing::FindPromtool();
  if (promtool.empty()) GTEST_SKIP() << "SKIPPED: promtool not found";
  EXPECT_NE(testing::PromtoolProblems(promtool, "x{a=\"1\" 2\n"), "");
  EXPECT_NE(testing::PromtoolProblems(promtool, "# TYPE c counter\nc 1\n"), "");  // no _total
  EXPECT_EQ(testing::PromtoolProblems(promtool,
                                      "# HELP c_total C.\n# TYPE c_total counter\n"
                                      "c_total 1\n"),
            "");
}

}  // namespace
}  // namespace tessera::metrics
