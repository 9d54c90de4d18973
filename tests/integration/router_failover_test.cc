// Failover in tessera-router: three stories260K replicas under load with
// long generations; one replica is killed with SIGKILL (mpirun and its
// ranks). No request that had not received a token yet fails (the router
// retries it elsewhere); a request that had tokens may fail, with
// UNAVAILABLE and a message stating how many tokens were delivered. The
// dead worker is UNHEALTHY within health interval × threshold + timeout +
// slack; restarted on the same port it turns HEALTHY and gets requests
// again.
#include "gtest/gtest.h"
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
constexpr int kMaxTokens = 200;
constexpr int kHealthIntervalMs = 200;
constexpr int kHealthTimeoutMs = 500;
constexpr int kUnhealthyThreshold = 2;
// Scheduling noise on a small shared machine.
constexpr int kSlackMs = 2000;

SteadyTime Now() { return std::chrono::steady_clock::now(); }

int64_t MsSince(SteadyTime t) {
  return std::chrono::duration_cast<milliseconds>(Now() - t).count();
}

TEST(RouterFailoverTest, KilledReplicaLeavesAndRejoins) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  RouterClusterOptions options;
  options.replicas = kReplicas;
  options.worker_args = StoriesWorkerArgs();
  options.router.health_interval_ms = kHealthIntervalMs;
  options.router.health_timeout_ms = kHealthTimeoutMs;
  options.router.unhealthy_threshold = kUnhealthyThreshold;
  // Streams cut by the kill end here; their continuation elsewhere is
  // router_stream_failover_test.cc's.
  options.router.extra_args = {"--max-failovers=0"};
  auto cluster = RouterCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const int victim = 0;
  const std::string id = cluster->RouterId(victim);
  const std::string served_as = cluster->worker_id(victim);

  LoadDriver load(
      cluster->llm(), kConcurrency,
      [](int i) -> std::optional<tessera::v1::GenerateRequest> {
        return GreedyLlmRequest(VariedPrompt(11, i, kPromptLen), kMaxTokens,
                                "failover-" + std::to_string(i));
      },
      cluster->ClientCallOptions());

  // Kill it while a call streams from it, far from its end (it fails), and,
  // likely, others wait for their first token there (they must not fail).
  std::string last;
  ASSERT_TRUE(PollUntil(milliseconds(30000),
                        [&] { return load.StreamingFrom(served_as, kMaxTokens / 4) >= 1; }))
      << "no call ever streamed from the victim" << cluster->DescribeWorkers();

  const SteadyTime killed_at = Now();
  cluster->KillReplica(victim);
  const int64_t kill_ms = MsSince(killed_at);
  const bool ejected =
      cluster->WaitState(id, WorkerInfo::STATE_UNHEALTHY, milliseconds(30000), &last);
  const int64_t eject_ms = MsSince(killed_at);
  ASSERT_TRUE(ejected) << "the dead worker never turned UNHEALTHY: " << last;
  const int64_t bound_ms =
      kill_ms + kHealthIntervalMs * kUnhealthyThreshold + kHealthTimeoutMs + kSlackMs;
  EXPECT_LE(eject_ms, bound_ms) << "UNHEALTHY only " << eject_ms << " ms after the kill";
  std::printf("killed in %lld ms; UNHEALTHY %lld ms after the kill began (bound %lld ms)\n",
              static_cast<long long>(kill_ms), static_cast<long long>(eject_ms),
              static_cast<long long>(bound_ms));

  // The others carry the load meanwhile.
  std::optional<WorkerInfo> info = cluster->FindWorker(id);
  ASSERT_TRUE(info.has_value());
  const int64_t routed_while_dead = info->requests_routed();
  ASSERT_TRUE(load.WaitCompleted(load.completed() + 2 * kConcurrency, milliseconds(60000)))
      << "the load stalled after the kill" << cluster->DescribeWorkers();
  info = cluster->FindWorker(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->state(), WorkerInfo::STATE_UNHEALTHY);
  EXPECT_EQ(info->requests_routed(), routed_while_dead)
      << "requests were routed to the UNHEALTHY worker";

  // Back on the same port: HEALTHY again, and it gets requests.
  ASSERT_TRUE(cluster->RestartReplica(victim, &error)) << error;
  const SteadyTime restarted_at = Now();
  ASSERT_TRUE(cluster->WaitState(id, WorkerInfo::STATE_HEALTHY, milliseconds(30000), &last))
      << "the restarted worker never turned HEALTHY: " << last;
  std::printf("HEALTHY %lld ms after the restarted replica served\n",
              static_cast<long long>(MsSince(restarted_at)));
  EXPECT_TRUE(cluster->WaitWorker(
      id, [&](const WorkerInfo& w) { return w.requests_routed() > routed_while_dead; },
      milliseconds(30000), &last))
      << "no request reached the restarted worker: " << last;
  ASSERT_TRUE(load.WaitCompleted(load.completed() + 2 * kConcurrency, milliseconds(60000)));

  const std::vector<CallRecord> records = load.StopAndJoin();
  int failed_mid_stream = 0;
  for (const CallRecord& r : records) {
    const std::string what = "call " + std::to_string(r.index);
    if (r.ok()) {
      ExpectCompleteCall(r, kPromptLen, kMaxTokens, what);
      continue;
    }
    ++failed_mid_stream;
    EXPECT_GT(r.tokens.size(), 0u)
        << what << " failed before its first token: " << Describe(r.status);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << what << ": " << Describe(r.status);
    EXPECT_TRUE(MentionsNumber(r.status.error_message(), static_cast<int64_t>(r.tokens.size())))
        << what << " failed after " << r.tokens.size()
        << " tokens, but its message does not say so: " << r.status.error_message();
    EXPECT_EQ(r.worker_id, served_as) << what << " failed on a worker that was not killed";
    EXPECT_LT(r.start, killed_at) << what << " started after the kill and still failed";
  }
  std::printf("%zu calls, %d failed mid-stream on the killed worker\n", records.size(),
              failed_mid_stream);
  // The victim was killed with calls streaming from it: they cannot finish.
  EXPECT_GE(failed_mid_stream, 1);
  // A call that started after the kill and completed on the victim's id was
  // served by the restarted process. (Not "started after it turned HEALTHY":
  // under the prefix policy the empty-cached newcomer may get only the call
  // that probed it, which can have been waiting for a slot since before.)
  int served_after_restart = 0;
  for (const CallRecord& r : records) {
    if (r.worker_id == served_as && r.start > killed_at && r.ok()) ++served_after_restart;
  }
  EXPECT_GE(served_after_restart, 1) << "no call completed on the restarted worker";
  tessera::v1::ClusterStatus status;
  if (cluster->GetClusterStatus(&status).ok()) {
    std::printf("cluster status: %s\n", status.ShortDebugString().c_str());
  }
}

}  // namespace
}  // namespace tessera::testing
