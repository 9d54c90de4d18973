// A dummy-tiny worker at TP=2 under mpirun with --metrics-port 0 runs a known workload (N
// greedy ignore_eos requests of max_tokens each); its /metrics, scraped over HTTP, counts
// exactly that workload and passes `promtool check metrics`.
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/common/http_test_util.h"
#include "tests/integration/common.h"
#include "tests/integration/stream.h"
#include "tests/integration/worker_cluster.h"
#include "tests/testing/promtool.h"

namespace tessera::testing {
namespace {

constexpr char kLabels[] = "{model_name=\"dummy-tiny\",engine=\"0\"}";

struct Scrape {
  int status = 0;
  std::string content_type;
  std::string body;
  std::map<std::string, double> samples;  // "name{labels}" -> value

  double at(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? -1.0 : it->second;
  }
  // The sum of every sample of metric `name` (any labels).
  double Sum(const std::string& name) const {
    double total = 0;
    for (const auto& [series, v] : samples) {
      if (series == name || series.starts_with(name + "{")) total += v;
    }
    return total;
  }
};

Scrape ScrapeMetrics(int port) {
  Scrape s;
  http::testing::RawClient client(port);
  if (!client.Send("GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")) return s;
  std::optional<http::testing::RawResponse> r = client.ReadResponse();
  if (!r) return s;
  s.status = r->status;
  s.content_type = r->header("content-type");
  s.body = r->body;
  for (absl::string_view line : absl::StrSplit(s.body, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &v)) continue;
    s.samples[std::string(line.substr(0, space))] = v;
  }
  return s;
}

std::string Series(const std::string& name) { return name + kLabels; }

TEST(WorkerMetricsTest, ScrapeCountsAKnownWorkload) {
  std::string error;
  WorkerClusterOptions options;
  options.ranks = 2;
  options.worker_args = {"--dummy",
                         "tiny",
                         "--device",
                         "cpu",
                         "--threads",
                         "1",
                         "--num-kv-blocks",
                         "256",
                         "--metrics-port",
                         "0",
                         "--log-stats-interval",
                         "1",
                         "--log-level",
                         WorkerLogLevel()};
  std::unique_ptr<WorkerCluster> cluster = WorkerCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;
  ASSERT_GT(cluster->metrics_port(), 0) << "no metrics port in the port file";

  const Scrape idle = ScrapeMetrics(cluster->metrics_port());
  ASSERT_EQ(idle.status, 200) << idle.body;
  EXPECT_EQ(idle.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(idle.at(Series("vllm:generation_tokens_total")), 0);

  constexpr int kRequests = 8;
  constexpr int kMaxTokens = 12;
  const std::vector<int32_t> prompt = {1, 17, 42, 99, 7, 250, 3};
  std::vector<StreamResult> results(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          RunGenerate(cluster->stub(), GreedyRequest(prompt, kMaxTokens, "m-" + std::to_string(i)));
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << Describe(results[i].status);
    ASSERT_EQ(results[i].tokens.size(), static_cast<size_t>(kMaxTokens));
  }

  // The loop publishes its gauges right after the step that ended the last request.
  Scrape s;
  EXPECT_TRUE(PollUntil(std::chrono::milliseconds(5000), [&] {
    s = ScrapeMetrics(cluster->metrics_port());
    return s.at(Series("vllm:num_requests_running")) == 0 &&
           s.Sum("vllm:request_success_total") == kRequests;
  })) << s.body;
  ASSERT_EQ(s.status, 200);

  EXPECT_EQ(s.Sum("vllm:request_success_total"), kRequests);
  EXPECT_EQ(s.at("vllm:request_success_total{model_name=\"dummy-tiny\",engine=\"0\","
                 "finished_reason=\"length\"}"),
            kRequests);
  EXPECT_EQ(s.at(Series("vllm:generation_tokens_total")), kRequests * kMaxTokens);
  EXPECT_EQ(s.at(Series("vllm:prompt_tokens_total")),
            kRequests * static_cast<double>(prompt.size()));
  EXPECT_EQ(s.at(Series("vllm:num_requests_running")), 0);
  EXPECT_EQ(s.at(Series("vllm:num_requests_waiting")), 0);
  for (const char* h : {"vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds",
                        "vllm:request_queue_time_seconds", "vllm:request_prompt_tokens",
                        "vllm:request_generation_tokens"}) {
    EXPECT_EQ(s.at(Series(std::string(h) + "_count")), kRequests) << h;
    EXPECT_EQ(s.at(std::string(h) + "_bucket{model_name=\"dummy-tiny\",engine=\"0\",le=\"+Inf\"}"),
              kRequests)
        << h;
  }
  EXPECT_EQ(s.at(Series("vllm:request_generation_tokens_sum")), kRequests * kMaxTokens);
  EXPECT_EQ(s.at(Series("vllm:inter_token_latency_seconds_count")), kRequests * (kMaxTokens - 1));
  EXPECT_GT(s.at(Series("vllm:e2e_request_latency_seconds_sum")), 0);
  // Every step ran at least one sequence; the steps' scheduled tokens add up to the prompts
  // plus every decode (the last token of each request is sampled, not run).
  EXPECT_GT(s.at(Series("vllm:iteration_tokens_total_count")), 0);
  EXPECT_EQ(s.at(Series("vllm:iteration_tokens_total_sum")),
            kRequests * static_cast<double>(prompt.size() + kMaxTokens - 1));
  EXPECT_EQ(s.at(Series("vllm:iteration_tokens_total_count")),
            s.at("tessera_engine_step_seconds_count{model_name=\"dummy-tiny\"}"));
  EXPECT_GT(s.at("tessera_tp_collective_seconds_total{model_name=\"dummy-tiny\"}"), 0);
  EXPECT_EQ(s.at("tessera_rank_healthy{model_name=\"dummy-tiny\",rank=\"1\"}"), 1);
  EXPECT_EQ(s.at("tessera_kv_blocks_capacity{model_name=\"dummy-tiny\"}"), 256);
  EXPECT_EQ(s.at("tessera_kv_blocks{model_name=\"dummy-tiny\",state=\"used\"}"), 0);
  EXPECT_EQ(s.Sum("tessera_kv_blocks"), 256);

  TESSERA_EXPECT_PROMTOOL_OK(s.body);
}

}  // namespace
}  // namespace tessera::testing
