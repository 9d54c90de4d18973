// `tessera drain` / `tessera undrain` against tessera-router in front of
// three stories260K replicas under steady load: once drain returns the
// worker gets no new requests (requests_routed stops growing; no request
// started afterwards is served by it), ListWorkers and `tessera workers`
// show it DRAINING, its in-flight requests run to their end, no client sees
// an error; after undrain it gets requests again. `drain --wait` returns
// once the worker is idle.
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::WorkerInfo;

constexpr int kReplicas = 3;
constexpr int kConcurrency = 6;
constexpr int kPromptLen = 24;
constexpr int kMaxTokens = 160;

SteadyTime Now() { return std::chrono::steady_clock::now(); }

// The "state" of worker `id` in `tessera workers --json` output ("" when
// absent or unparsable).
std::string CliWorkerState(const std::string& json_text, const std::string& id) {
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("workers")) return "";
  for (const nlohmann::json& w : doc["workers"]) {
    if (w.value("id", "") == id) return w.value("state", "");
  }
  return "";
}

int CountServedBy(const std::vector<CallRecord>& records, const std::string& worker_id,
                  const std::function<bool(const CallRecord&)>& pred) {
  int n = 0;
  for (const CallRecord& r : records) {
    if (r.worker_id == worker_id && pred(r)) ++n;
  }
  return n;
}

TEST(RouterDrainTest, DrainAndUndrainUnderLoad) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  auto cluster = RouterCluster::Start(
      {.replicas = kReplicas, .worker_args = StoriesWorkerArgs(), .router = {}}, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const int victim = 1;
  const std::string id = cluster->RouterId(victim);
  const std::string served_as = cluster->worker_id(victim);  // GenerateResponse.worker_id

  LoadDriver load(
      cluster->llm(), kConcurrency,
      [](int i) -> std::optional<tessera::v1::GenerateRequest> {
        return GreedyLlmRequest(VariedPrompt(7, i, kPromptLen), kMaxTokens,
                                "drain-" + std::to_string(i));
      },
      cluster->ClientCallOptions());

  // Drain while a call streams from the worker, far from its end. Should
  // the call still have ended before the router drained the worker (its
  // reply says how many were in flight), undrain and try again.
  std::string last;
  SteadyTime drain_called;
  SteadyTime drain_returned;
  int64_t in_flight_at_drain = 0;
  for (int attempt = 0; attempt < 5 && in_flight_at_drain == 0; ++attempt) {
    if (attempt > 0) {
      const CliResult undone = cluster->AdminCli({"undrain", id});
      ASSERT_EQ(undone.exit_code, 0) << undone.Describe();
    }
    ASSERT_TRUE(PollUntil(milliseconds(30000),
                          [&] { return load.StreamingFrom(served_as, kMaxTokens / 8) >= 1; }))
        << "no call streamed from the worker" << cluster->DescribeWorkers();
    drain_called = Now();
    const CliResult drained = cluster->AdminCli({"drain", id, "--json"});
    drain_returned = Now();
    ASSERT_EQ(drained.exit_code, 0) << drained.Describe();
    const nlohmann::json doc = nlohmann::json::parse(drained.out, nullptr, false);
    ASSERT_TRUE(!doc.is_discarded() && doc.contains("worker")) << drained.Describe();
    in_flight_at_drain = doc["worker"].value("in_flight", int64_t{0});
  }
  ASSERT_GT(in_flight_at_drain, 0) << "no drain caught a request in flight";
  std::optional<WorkerInfo> info = cluster->FindWorker(id);
  ASSERT_TRUE(info.has_value()) << cluster->DescribeWorkers();
  EXPECT_EQ(info->state(), WorkerInfo::STATE_DRAINING) << info->ShortDebugString();
  const int64_t routed_at_drain = info->requests_routed();

  // The load goes on elsewhere; the drained worker finishes what it has.
  const int done_at_drain = load.completed();
  ASSERT_TRUE(load.WaitCompleted(done_at_drain + 4 * kConcurrency, milliseconds(60000)))
      << "the load stalled after the drain: " << load.completed() << " calls ended"
      << cluster->DescribeWorkers();
  EXPECT_TRUE(cluster->WaitWorker(
      id, [](const WorkerInfo& w) { return w.in_flight() == 0; }, milliseconds(30000), &last))
      << "in-flight requests on the drained worker never ended: " << last;
  info = cluster->FindWorker(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->requests_routed(), routed_at_drain)
      << "requests were routed to the drained worker: " << info->ShortDebugString();
  EXPECT_EQ(info->state(), WorkerInfo::STATE_DRAINING);
  EXPECT_EQ(load.failed(), 0) << DescribeFailures(load.Snapshot());

  // The CLI shows it.
  const CliResult listed = cluster->AdminCli({"workers", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.Describe();
  EXPECT_EQ(CliWorkerState(listed.out, id), "draining") << listed.Describe();
  const CliResult table = cluster->AdminCli({"workers"});
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_NE(table.out.find(id), std::string::npos) << table.Describe();

  // Undrain: it gets requests again.
  const SteadyTime undrain_called = Now();
  const CliResult undrained = cluster->AdminCli({"undrain", id});
  const SteadyTime undrain_returned = Now();
  ASSERT_EQ(undrained.exit_code, 0) << undrained.Describe();
  EXPECT_TRUE(cluster->WaitWorker(
      id,
      [&](const WorkerInfo& w) {
        return w.state() == WorkerInfo::STATE_HEALTHY && w.requests_routed() > routed_at_drain;
      },
      milliseconds(30000), &last))
      << "no requests reached the undrained worker: " << last;
  // Let some of them finish.
  const int done_at_undrain = load.completed();
  ASSERT_TRUE(load.WaitCompleted(done_at_undrain + 3 * kConcurrency, milliseconds(60000)));

  // `drain --wait` on another worker, while a call streams from it, returns
  // once it is idle.
  const std::string other = cluster->RouterId(2);
  ASSERT_TRUE(
      PollUntil(milliseconds(30000),
                [&] { return load.StreamingFrom(cluster->worker_id(2), kMaxTokens / 8) >= 1; }))
      << "no call streamed from " << other << cluster->DescribeWorkers();
  const SteadyTime wait_called = Now();
  const CliResult waited =
      cluster->AdminCli({"drain", other, "--wait", "--wait-timeout", "60", "--json"});
  const SteadyTime wait_returned = Now();
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  info = cluster->FindWorker(other);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->in_flight(), 0) << "drain --wait returned with requests in flight: "
                                  << info->ShortDebugString();
  EXPECT_EQ(info->state(), WorkerInfo::STATE_DRAINING);
  const nlohmann::json waited_doc =
      nlohmann::json::parse(waited.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(waited_doc.is_discarded()) << waited.Describe();
  if (!waited_doc.is_discarded()) {
    EXPECT_EQ(waited_doc.value("drained", false), true) << waited.out;
  }
  const CliResult reopened = cluster->AdminCli({"undrain", other});
  EXPECT_EQ(reopened.exit_code, 0) << reopened.Describe();

  // Unknown ids are NOT_FOUND (exit 3).
  const CliResult unknown = cluster->AdminCli({"drain", "no-such-worker"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.Describe();

  const std::vector<CallRecord> records = load.StopAndJoin();
  EXPECT_EQ(DescribeFailures(records), "");
  for (const CallRecord& r : records) {
    ExpectCompleteCall(r, kPromptLen, kMaxTokens, "call " + std::to_string(r.index));
  }
  // The requests that were on the worker when the router drained it ran to
  // their end there (all calls are OK, checked above).
  EXPECT_GE(CountServedBy(records, served_as,
                          [&](const CallRecord& r) {
                            return r.start < drain_returned && r.end > drain_called;
                          }),
            in_flight_at_drain);
  // None started between drain and undrain was served by it.
  EXPECT_EQ(CountServedBy(records, served_as,
                          [&](const CallRecord& r) {
                            return r.start > drain_returned && r.start < undrain_called;
                          }),
            0);
  // drain --wait returned after the calls running there had ended.
  for (const CallRecord& r : records) {
    if (r.worker_id == cluster->worker_id(2) && r.RunningAt(wait_called)) {
      EXPECT_LT(r.end, wait_returned) << "call " << r.index << " outlived drain --wait";
    }
  }
  // Some started after undrain were.
  EXPECT_GE(CountServedBy(records, served_as,
                          [&](const CallRecord& r) { return r.start > undrain_returned; }),
            1);
}

}  // namespace
}  // namespace tessera::testing
