// Scaling a tessera-router cluster under load with the CLI: `tessera add`
// a fourth stories260K replica (it joins the rotation and serves requests)
// and `tessera remove` another (it leaves the list at once, gets no new
// requests, its in-flight ones run to their end). No client sees an error.
#include <set>

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
constexpr int kMaxTokens = 320;

SteadyTime Now() { return std::chrono::steady_clock::now(); }

// The worker ids in `tessera workers --json` output.
std::set<std::string> CliWorkerIds(const std::string& json_text) {
  std::set<std::string> ids;
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("workers")) return ids;
  for (const nlohmann::json& w : doc["workers"]) ids.insert(w.value("id", ""));
  return ids;
}

TEST(RouterScaleTest, AddAndRemoveUnderLoad) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  auto cluster = RouterCluster::Start(
      {.replicas = kReplicas, .worker_args = StoriesWorkerArgs(), .router = {}}, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const int added = cluster->AddReplica({}, &error);
  ASSERT_GE(added, 0) << error;
  const std::string added_address = cluster->worker_address(added);
  ASSERT_FALSE(cluster->FindWorker(added_address).has_value())
      << "the router knows the new replica before `tessera add`";

  LoadDriver load(
      cluster->llm(), kConcurrency,
      [](int i) -> std::optional<tessera::v1::GenerateRequest> {
        return GreedyLlmRequest(VariedPrompt(13, i, kPromptLen), kMaxTokens,
                                "scale-" + std::to_string(i));
      },
      cluster->ClientCallOptions());
  ASSERT_TRUE(load.WaitCompleted(kConcurrency, milliseconds(60000))) << cluster->DescribeWorkers();

  // Scale out.
  const CliResult add = cluster->AdminCli({"add", added_address});
  ASSERT_EQ(add.exit_code, 0) << add.Describe();
  std::string last;
  EXPECT_TRUE(cluster->WaitWorker(
      added_address,
      [](const WorkerInfo& w) {
        return w.state() == WorkerInfo::STATE_HEALTHY && w.requests_routed() > 0;
      },
      milliseconds(30000), &last))
      << "the added worker never served: " << last << cluster->DescribeWorkers();
  std::optional<WorkerInfo> info = cluster->FindWorker(added_address);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->source(), WorkerInfo::SOURCE_ADMIN) << info->ShortDebugString();
  const std::string added_id = info->id();
  // Adding it twice is refused (ALREADY_EXISTS: exit 1).
  const CliResult again = cluster->AdminCli({"add", added_address});
  EXPECT_EQ(again.exit_code, 1) << again.Describe();

  // Scale in, while the removed worker is busy.
  const int removed = 1;
  const std::string removed_id = cluster->RouterId(removed);
  // A call streams from it, far from its end.
  ASSERT_TRUE(PollUntil(
      milliseconds(30000),
      [&] { return load.StreamingFrom(cluster->worker_id(removed), kMaxTokens / 8) >= 1; }))
      << "no call streamed from the worker to remove" << cluster->DescribeWorkers();
  const SteadyTime remove_called = Now();
  const CliResult remove = cluster->AdminCli({"remove", removed_id});
  const SteadyTime remove_returned = Now();
  ASSERT_EQ(remove.exit_code, 0) << remove.Describe();
  EXPECT_FALSE(cluster->FindWorker(removed_id).has_value())
      << "still listed after remove:" << cluster->DescribeWorkers();
  // Its in-flight requests end (seen from the worker itself).
  std::optional<tessera::v1::LoadReport> removed_load;
  EXPECT_TRUE(PollUntil(milliseconds(30000),
                        [&] {
                          removed_load = cluster->ReplicaLoad(removed);
                          return removed_load && removed_load->in_flight() == 0 &&
                                 removed_load->running() == 0 && removed_load->waiting() == 0;
                        }))
      << "the removed worker never went idle: "
      << (removed_load ? removed_load->ShortDebugString() : "GetLoad failed");
  ASSERT_TRUE(load.WaitCompleted(load.completed() + 3 * kConcurrency, milliseconds(60000)))
      << cluster->DescribeWorkers();

  // Unknown ids are NOT_FOUND (exit 3); the listing has the new shape.
  const CliResult unknown = cluster->AdminCli({"remove", removed_id});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.Describe();
  const CliResult listed = cluster->AdminCli({"workers", "--json"});
  EXPECT_EQ(listed.exit_code, 0) << listed.Describe();
  const std::set<std::string> ids = CliWorkerIds(listed.out);
  EXPECT_TRUE(ids.contains(added_id)) << listed.Describe();
  EXPECT_FALSE(ids.contains(removed_id)) << listed.Describe();
  EXPECT_EQ(ids.size(), static_cast<size_t>(kReplicas)) << listed.Describe();

  const std::vector<CallRecord> records = load.StopAndJoin();
  EXPECT_EQ(DescribeFailures(records), "");
  for (const CallRecord& r : records) {
    ExpectCompleteCall(r, kPromptLen, kMaxTokens, "call " + std::to_string(r.index));
  }
  const std::string removed_served_as = cluster->worker_id(removed);
  const std::string added_served_as = cluster->worker_id(added);
  int across_remove = 0;
  int after_remove = 0;
  int on_added = 0;
  for (const CallRecord& r : records) {
    if (r.worker_id == removed_served_as && r.start < remove_returned && r.end > remove_called) {
      ++across_remove;
    }
    if (r.worker_id == removed_served_as && r.start > remove_returned) ++after_remove;
    if (r.worker_id == added_served_as) ++on_added;
  }
  EXPECT_GE(across_remove, 1) << "no request was in flight on the removed worker across remove";
  // Every request that reached the removed worker is one the clients saw
  // it serve (each looks its prompt up in the prefix cache once): none came
  // from elsewhere, e.g. a retry placed there after the remove.
  int served_by_removed = 0;
  for (const CallRecord& r : records) served_by_removed += r.worker_id == removed_served_as;
  const std::optional<tessera::v1::LoadReport> removed_final = cluster->ReplicaLoad(removed);
  ASSERT_TRUE(removed_final.has_value());
  EXPECT_EQ(removed_final->prefix_cache_queried_tokens(),
            static_cast<int64_t>(served_by_removed) * kPromptLen)
      << "the removed worker looked up more prompts than the calls it served: "
      << removed_final->ShortDebugString();
  EXPECT_EQ(after_remove, 0) << "requests started after remove were served by the removed worker";
  EXPECT_GE(on_added, 1) << "no call was served by the added worker";
}

}  // namespace
}  // namespace tessera::testing
