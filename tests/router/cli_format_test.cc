// The workers table, status lines and JSON documents of the tessera CLI.
#include "router/cli/cli_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::cli {
namespace {

v1::ListWorkersResponse TwoWorkers() {
  v1::ListWorkersResponse resp;
  v1::WorkerInfo* a = resp.add_workers();
  a->set_id("w-0");
  a->set_address("10.0.0.1:50051");
  a->set_state(v1::WorkerInfo::STATE_HEALTHY);
  a->set_source(v1::WorkerInfo::SOURCE_STATIC);
  a->set_in_flight(7);
  a->set_requests_routed(1234);
  a->set_block_size(16);
  v1::LoadReport* load = a->mutable_load();
  load->set_running(5);
  load->set_waiting(2);
  load->set_kv_blocks_used(120);
  load->set_kv_blocks_total(512);
  load->set_prefix_cache_hit_rate(0.456);
  load->set_prefix_cache_queried_tokens(1000);
  load->set_prefix_cache_hit_tokens(456);
  load->set_model("tiny");
  v1::WorkerInfo* b = resp.add_workers();
  b->set_id("replica-long-name");
  b->set_address("host-b:1");
  b->set_state(v1::WorkerInfo::STATE_UNHEALTHY);
  b->set_source(v1::WorkerInfo::SOURCE_ADMIN);
  b->set_last_error("connection refused");
  return resp;
}

TEST(CliFormatTest, WorkersTable) {
  EXPECT_EQ(FormatWorkersTable(TwoWorkers()),
            "ID                 ADDRESS         STATE      RUNNING  WAITING  KV USE         "
            "PREFIX HIT  IN-FLIGHT\n"
            "w-0                10.0.0.1:50051  healthy    5        2        120/512 (23%)  "
            "46%         7\n"
            "replica-long-name  host-b:1        unhealthy  -        -        -              "
            "-           0\n");
}

TEST(CliFormatTest, EmptyWorkersTableIsTheHeader) {
  EXPECT_EQ(FormatWorkersTable(v1::ListWorkersResponse()),
            "ID  ADDRESS  STATE  RUNNING  WAITING  KV USE  PREFIX HIT  IN-FLIGHT\n");
}

TEST(CliFormatTest, TableAlignsAndTrims) {
  EXPECT_EQ(FormatTable({{"A", "BB", "C"}, {"xyz", "1"}, {"", "", "last"}}),
            "A    BB  C\n"
            "xyz  1\n"
            "         last\n");
  EXPECT_EQ(FormatTable({}), "");
}

TEST(CliFormatTest, PercentsAndKvUse) {
  EXPECT_EQ(FormatPercent(0), "0%");
  EXPECT_EQ(FormatPercent(1), "100%");
  EXPECT_EQ(FormatPercent(0.004), "0.4%");
  EXPECT_EQ(FormatPercent(0.995), "100%");
  EXPECT_EQ(FormatKvUse(0, 0), "-");
  EXPECT_EQ(FormatKvUse(512, 512), "512/512 (100%)");
  EXPECT_EQ(FormatKvUse(1, 1000), "1/1000 (0.1%)");
}

TEST(CliFormatTest, StateAndSourceNames) {
  EXPECT_EQ(StateName(v1::WorkerInfo::STATE_DRAINING), "draining");
  EXPECT_EQ(StateName(v1::WorkerInfo::STATE_UNSPECIFIED), "unknown");
  EXPECT_EQ(SourceName(v1::WorkerInfo::SOURCE_REGISTERED), "registered");
  EXPECT_EQ(SourceName(v1::WorkerInfo::SOURCE_DNS), "dns");
}

TEST(CliFormatTest, WorkersJson) {
  const nlohmann::json j = nlohmann::json::parse(WorkersToJson(TwoWorkers()).dump());
  ASSERT_EQ(j["workers"].size(), 2u);
  const auto& a = j["workers"][0];
  EXPECT_EQ(a["id"], "w-0");
  EXPECT_EQ(a["address"], "10.0.0.1:50051");
  EXPECT_EQ(a["state"], "healthy");
  EXPECT_EQ(a["source"], "static");
  EXPECT_EQ(a["in_flight"], 7);
  EXPECT_EQ(a["requests_routed"], 1234);  // a number, not a string
  EXPECT_EQ(a["load"]["running"], 5);
  EXPECT_EQ(a["load"]["kv_blocks_total"], 512);
  EXPECT_DOUBLE_EQ(a["load"]["prefix_cache_hit_rate"].get<double>(), 0.456);
  EXPECT_EQ(a["load"]["model"], "tiny");
  const auto& b = j["workers"][1];
  EXPECT_EQ(b["state"], "unhealthy");
  EXPECT_EQ(b["last_error"], "connection refused");
  EXPECT_TRUE(b["load"].is_null());
  EXPECT_EQ(nlohmann::json::parse(WorkersToJson(v1::ListWorkersResponse()).dump()),
            nlohmann::json::parse(R"({"workers": []})"));
}

v1::ClusterStatus SomeStatus() {
  v1::ClusterStatus s;
  s.set_workers(3);
  s.set_healthy(2);
  s.set_draining(1);
  s.set_running(9);
  s.set_waiting(4);
  s.set_prefix_cache_hit_rate(0.25);
  s.set_prefix_cache_queried_tokens(400);
  s.set_prefix_cache_hit_tokens(100);
  s.set_policy("prefix");
  s.set_requests_in_flight(13);
  s.set_requests_total(5000000000LL);
  s.set_requests_failed(2);
  s.set_requests_retried(1);
  s.set_requests_rejected(6);
  return s;
}

TEST(CliFormatTest, ClusterStatusLines) {
  EXPECT_EQ(FormatClusterStatus(SomeStatus()),
            "policy: prefix\n"
            "workers: 3\n"
            "healthy: 2\n"
            "draining: 1\n"
            "unhealthy: 0\n"
            "running: 9\n"
            "waiting: 4\n"
            "prefix_cache_hit_rate: 0.2500\n"
            "prefix_cache_queried_tokens: 400\n"
            "prefix_cache_hit_tokens: 100\n"
            "requests_in_flight: 13\n"
            "requests_total: 5000000000\n"
            "requests_failed: 2\n"
            "requests_retried: 1\n"
            "requests_rejected: 6\n");
}

TEST(CliFormatTest, ClusterStatusJsonHasEveryField) {
  const nlohmann::json j = nlohmann::json::parse(ClusterStatusToJson(SomeStatus()).dump());
  EXPECT_EQ(j["policy"], "prefix");
  EXPECT_EQ(j["workers"], 3);
  EXPECT_EQ(j["requests_total"], 5000000000LL);
  EXPECT_DOUBLE_EQ(j["prefix_cache_hit_rate"].get<double>(), 0.25);
  // One key per ClusterStatus field: a new field must be added here too.
  EXPECT_EQ(j.size(), static_cast<size_t>(v1::ClusterStatus::descriptor()->field_count()));
}

}  // namespace
}  // namespace tessera::cli
