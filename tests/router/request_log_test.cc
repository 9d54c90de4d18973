// The request log's lines (text and JSON) and the router's metrics as the
// relay's observer: requests by worker and status, refusals, placements by
// reason and matched blocks, retries, failovers, and the per-worker gauges
// refreshed (and dropped) at scrape time.
#include "router/request_log.h"

#include <cstdio>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/router_metrics.h"
#include "tests/router/fake_worker.h"

namespace tessera::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RequestRecord Sample() {
  RequestRecord r;
  r.end_time = absl::FromUnixMillis(1700000000123);
  r.request_id = "router-ab-7";
  r.model = "stories";
  r.front_end = "http";
  r.worker = "w1";
  r.attempts = 2;
  r.continuations = 1;
  r.finish_reason = "length";
  r.prompt_tokens = 12;
  r.completion_tokens = 16;
  r.cached_tokens = 8;
  r.queue = absl::Microseconds(250);
  r.ttft = absl::Milliseconds(12);
  r.total = absl::Milliseconds(40);
  r.failed_over = true;
  return r;
}

TEST(RequestLogTest, TextLine) {
  RequestRecord r = Sample();
  EXPECT_EQ(FormatRequestText(r),
            "2023-11-14T22:13:20.123Z request id=router-ab-7 client_id=- model=stories "
            "front_end=http worker=w1 attempts=2 continuations=1 status=OK finish=length "
            "prompt_tokens=12 completion_tokens=16 cached_tokens=8 queue_ms=0.2 ttft_ms=12.0 "
            "total_ms=40.0");
  r.client_request_id = "my id \"x\"";
  r.status = grpc::StatusCode::UNAVAILABLE;
  r.error = "worker w1 failed";
  r.ttft.reset();
  r.worker.clear();
  const std::string line = FormatRequestText(r);
  EXPECT_THAT(line, HasSubstr(R"(client_id="my id \"x\"")"));
  EXPECT_THAT(line, HasSubstr("worker=- "));
  EXPECT_THAT(line, HasSubstr("status=UNAVAILABLE"));
  EXPECT_THAT(line, HasSubstr("ttft_ms=-"));
  EXPECT_THAT(line, HasSubstr(R"(error="worker w1 failed")"));
  EXPECT_THAT(line, Not(HasSubstr("\n")));
}

TEST(RequestLogTest, JsonLine) {
  RequestRecord r = Sample();
  r.client_request_id = "c-1\xff";  // invalid UTF-8 does not throw
  const nlohmann::json j = nlohmann::json::parse(FormatRequestJson(r));
  EXPECT_EQ(j["request_id"], "router-ab-7");
  EXPECT_TRUE(j["client_request_id"].is_string());
  EXPECT_EQ(j["worker"], "w1");
  EXPECT_EQ(j["status"], "OK");
  EXPECT_EQ(j["completion_tokens"], 16);
  EXPECT_EQ(j["continuations"], 1);
  EXPECT_DOUBLE_EQ(j["ttft_ms"].get<double>(), 12.0);
  EXPECT_FALSE(j.contains("error"));
  r.ttft.reset();
  r.worker.clear();
  r.status = grpc::StatusCode::RESOURCE_EXHAUSTED;
  r.error = "queue full";
  const nlohmann::json k = nlohmann::json::parse(FormatRequestJson(r));
  EXPECT_TRUE(k["ttft_ms"].is_null());
  EXPECT_TRUE(k["worker"].is_null());
  EXPECT_EQ(k["error"], "queue full");
}

TEST(RequestLogTest, FormatsAndWrite) {
  EXPECT_TRUE(ParseRequestLogFormat("json").ok());
  EXPECT_TRUE(ParseRequestLogFormat("text").ok());
  EXPECT_FALSE(ParseRequestLogFormat("xml").ok());
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  {
    RequestLog log(RequestLogFormat::kJson, f);
    log.Write(Sample());
    log.Write(Sample());
  }
  std::fclose(f);
  const std::string out(buf, size);
  free(buf);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
  EXPECT_EQ(out.front(), '{');
}

TEST(RouterMetricsTest, RecordsRequestsAndRefreshesWorkers) {
  testing::FakeWorker fake(testing::FakeWorkerOptions{.worker_id = "wx"});  // outlives the pool
  auto policy = MakePolicy("round_robin", PolicyOptions{});
  ASSERT_TRUE(policy.ok());
  WorkerPoolOptions po;
  po.watch_kv_events = false;
  po.health_interval = absl::Milliseconds(20);
  WorkerPool pool(po, *std::move(policy));
  AdmissionController admission(AdmissionController::Options{});
  RouterCounters counters;
  RouterMetrics metrics(&pool, &admission, &counters, nullptr);

  metrics.OnEnd(Sample());
  RequestRecord refused = Sample();
  refused.worker.clear();
  refused.status = grpc::StatusCode::RESOURCE_EXHAUSTED;
  refused.failed_over = false;
  refused.continuations = 0;
  refused.ttft.reset();
  metrics.OnEnd(refused);
  metrics.OnRefused(grpc::StatusCode::INVALID_ARGUMENT);
  metrics.OnRetry("w0", Outcome::kWorkerError);
  metrics.OnAdmission(absl::OkStatus(), absl::Milliseconds(3));
  metrics.ObserveHttp("/v1/completions", 200, absl::Milliseconds(5));
  std::string text = metrics.Expose();
  EXPECT_THAT(text, HasSubstr(R"(tessera_router_requests_total{worker="w1",status="OK"} 1)"));
  EXPECT_THAT(
      text,
      HasSubstr(R"(tessera_router_requests_total{worker="none",status="RESOURCE_EXHAUSTED"} 1)"));
  EXPECT_THAT(
      text,
      HasSubstr(R"(tessera_router_requests_total{worker="none",status="INVALID_ARGUMENT"} 1)"));
  EXPECT_THAT(text, HasSubstr("tessera_router_failovers_total 1"));
  EXPECT_THAT(text, HasSubstr("tessera_router_stream_continuations_total 1"));
  EXPECT_THAT(text,
              HasSubstr(R"(tessera_router_retries_total{worker="w0",reason="worker_error"} 1)"));
  EXPECT_THAT(text, HasSubstr("tessera_router_queue_wait_seconds_count 1"));
  EXPECT_THAT(text,
              HasSubstr("tessera_router_time_to_first_token_seconds_count{front_end=\"http\"} 1"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(tessera_router_http_request_duration_seconds_count{route="/v1/completions",code="200"} 1)"));
  EXPECT_THAT(text, HasSubstr("tessera_router_queue_length 0"));
  EXPECT_THAT(text, HasSubstr("tessera_router_active_streams 0"));

  // A worker appears at the next scrape and disappears after it left.
  ASSERT_TRUE(pool.Add(fake.address(), v1::WorkerInfo::SOURCE_ADMIN, "wx").ok());
  ASSERT_TRUE(pool.WaitEligible("wx", absl::Seconds(10)));
  text = metrics.Expose();
  EXPECT_THAT(text, HasSubstr(R"(tessera_router_worker_healthy{worker="wx"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_router_worker_state{worker="wx",state="healthy"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_router_worker_state{worker="wx",state="draining"} 0)"));
  EXPECT_THAT(text,
              HasSubstr(R"(tessera_router_worker_breaker_state{worker="wx",state="closed"} 1)"));
  ASSERT_TRUE(pool.Remove("wx").ok());
  text = metrics.Expose();
  EXPECT_THAT(text, Not(HasSubstr(R"(worker="wx")")));
}

TEST(PlacementReasonTest, PrefixPolicySaysWhy) {
  auto policy = MakePolicy("prefix", PolicyOptions{.seed = 1});
  ASSERT_TRUE(policy.ok());
  const std::vector<uint64_t> hashes = {1, 2, 3, 4};
  const PlacementRequest request{hashes};
  // Balanced, one holds a prefix: prefix_match.
  std::vector<Candidate> c = {{0, 1, 0}, {1, 1, 3}};
  Choice choice = (*policy)->Decide(request, c);
  EXPECT_EQ(choice.index, 1u);
  EXPECT_EQ(choice.reason, PlacementReason::kPrefixMatch);
  // Nobody holds anything: policy.
  c = {{0, 1, 0}, {1, 2, 0}};
  EXPECT_EQ((*policy)->Decide(request, c).reason, PlacementReason::kPolicy);
  // Out of balance: balance_fallback.
  c = {{0, 0, 4}, {1, 100, 4}};
  choice = (*policy)->Decide(request, c);
  EXPECT_EQ(choice.reason, PlacementReason::kBalanceFallback);
  EXPECT_EQ(choice.index, 0u);
  EXPECT_STREQ(PlacementReasonName(PlacementReason::kBalanceFallback), "balance_fallback");
  auto rr = MakePolicy("round_robin", PolicyOptions{});
  EXPECT_EQ((*rr)->Decide(request, c).reason, PlacementReason::kPolicy);
}

}  // namespace
}  // namespace tessera::router
