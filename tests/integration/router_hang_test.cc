// A hung rank behind tessera-router: two TP=2 stories260K replicas, the
// router with its default poll (500 ms, 2 failed polls) and one replica's
// follower (rank 1) SIGSTOPped. Within 5 s of the stop the replica's health
// is NOT_SERVING (its GetLoad says stalled), the router shows it UNHEALTHY
// and new requests succeed on the other replica. Continued in time, the
// stalled step completes and the replica serves again; left stopped, the
// replica exits non-zero once its --step-timeout expires. Every wait is
// bounded; the stopped rank gets SIGCONT and every process is killed at the
// end, also when the test fails.
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::WorkerInfo;

constexpr int kVictim = 0;
constexpr int kOther = 1;
constexpr auto kDetectBound = milliseconds(5000);  // the bound: stop -> routed around
constexpr int kStepTimeoutS = 12;

SteadyTime Now() { return std::chrono::steady_clock::now(); }
milliseconds Since(SteadyTime t) { return std::chrono::duration_cast<milliseconds>(Now() - t); }
milliseconds Left(SteadyTime t, milliseconds bound) {
  return std::max(milliseconds(0), bound - Since(t));
}

// SIGSTOPs one rank; SIGCONTs it when it goes out of scope (a test that
// fails half-way must not leave a stopped process for the cleanup).
class StoppedRank {
 public:
  explicit StoppedRank(pid_t pid) : pid_(pid) { stopped_ = pid_ > 0 && kill(pid_, SIGSTOP) == 0; }
  ~StoppedRank() { Continue(); }
  StoppedRank(const StoppedRank&) = delete;
  StoppedRank& operator=(const StoppedRank&) = delete;
  bool stopped() const { return stopped_; }
  void Continue() {
    if (stopped_) kill(pid_, SIGCONT);
    stopped_ = false;
  }

 private:
  const pid_t pid_;
  bool stopped_ = false;
};

std::unique_ptr<RouterCluster> StartCluster(std::string* error) {
  RouterClusterOptions options;
  options.replicas = 2;
  options.ranks = 2;
  options.worker_args = StoriesWorkerArgs({"--step-timeout", std::to_string(kStepTimeoutS)});
  // The router's defaults: what a deployment gets.
  options.router.health_interval_ms = 500;
  options.router.health_timeout_ms = 1000;
  options.router.unhealthy_threshold = 2;
  return RouterCluster::Start(options, error);
}

// `n` short calls through the router; each must succeed on `on` ("" = any).
void ExpectCallsSucceed(RouterCluster& cluster, int n, const std::string& on,
                        const std::string& what) {
  for (int i = 0; i < n; ++i) {
    const std::vector<int32_t> prompt = VariedPrompt(16, i, 12);
    const CallRecord r =
        RunLlmGenerate(cluster.llm(), GreedyLlmRequest(prompt, 8, what + std::to_string(i)),
                       cluster.ClientCallOptions(milliseconds(20000)));
    ExpectCompleteCall(r, prompt.size(), 8, what + " call " + std::to_string(i));
    if (!on.empty()) EXPECT_EQ(r.worker_id, on) << what << " call " << i;
  }
}

pid_t FollowerOf(RouterCluster& cluster, int replica) {
  const std::vector<pid_t> pids = cluster.replica(replica)->RankPids(1);
  EXPECT_EQ(pids.size(), 1u) << "rank 1 of replica " << replica << " not found by its marker";
  return pids.size() == 1 ? pids[0] : -1;
}

// Waits (within `bound` of `since`) until the victim's health is NOT_SERVING,
// its GetLoad says stalled, and the router shows it UNHEALTHY.
void ExpectRoutedAround(RouterCluster& cluster, SteadyTime since) {
  WorkerCluster& victim = *cluster.replica(kVictim);
  HealthState health = HealthState::kServing;
  ASSERT_TRUE(PollUntil(Left(since, kDetectBound),
                        [&] {
                          health = CheckHealth(*victim.channel(), milliseconds(500));
                          return health == HealthState::kNotServing;
                        }))
      << "health still " << HealthStateName(health) << " 5 s after the stop\n"
      << victim.LogTail();
  const milliseconds not_serving = Since(since);
  const std::optional<tessera::v1::LoadReport> load = GetLoad(victim.stub(), milliseconds(1000));
  ASSERT_TRUE(load.has_value()) << "GetLoad of the stalled replica failed";
  EXPECT_TRUE(load->stalled());
  EXPECT_GE(load->stall_seconds(), 1.0);
  std::string last;
  ASSERT_TRUE(cluster.WaitState(cluster.RouterId(kVictim), WorkerInfo::STATE_UNHEALTHY,
                                Left(since, kDetectBound), &last))
      << "the router still shows the stalled replica as " << last << " 5 s after the stop";
  const milliseconds ejected = Since(since);
  std::printf("rank 1 stopped: NOT_SERVING after %lld ms, UNHEALTHY at the router after %lld ms\n",
              static_cast<long long>(not_serving.count()), static_cast<long long>(ejected.count()));
  EXPECT_LE(ejected, kDetectBound);
}

TEST(RouterHangTest, StoppedFollowerIsRoutedAroundAndItsReplicaFailsAtStepTimeout) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  auto cluster = StartCluster(&error);
  ASSERT_NE(cluster, nullptr) << error;
  ExpectCallsSucceed(*cluster, 4, "", "warm-up");  // some step history on both

  StoppedRank stopped(FollowerOf(*cluster, kVictim));
  ASSERT_TRUE(stopped.stopped());
  const SteadyTime stopped_at = Now();
  ExpectRoutedAround(*cluster, stopped_at);
  if (HasFatalFailure()) return;
  ExpectCallsSucceed(*cluster, 6, cluster->worker_id(kOther), "routed-around");

  // Still stopped: the leader's collective times out at --step-timeout and
  // the whole job exits non-zero (bounded: the timeout plus mpirun's teardown).
  const std::optional<int> code =
      cluster->replica(kVictim)->job().WaitExit(milliseconds(kStepTimeoutS * 1000 + 20000));
  ASSERT_TRUE(code.has_value()) << "the replica with a stopped rank is still running "
                                << Since(stopped_at).count() << " ms after the stop";
  EXPECT_NE(*code, 0) << "the replica with a hung rank exited 0";
  EXPECT_GE(Since(stopped_at), milliseconds(kStepTimeoutS * 1000 - 1000))
      << "the replica ended before --step-timeout";
  ExpectNoWorkerLeft(*cluster->replica(kVictim));
  ExpectCallsSucceed(*cluster, 2, cluster->worker_id(kOther), "after-exit");
}

TEST(RouterHangTest, FollowerContinuedBeforeStepTimeoutServesAgain) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  auto cluster = StartCluster(&error);
  ASSERT_NE(cluster, nullptr) << error;
  ExpectCallsSucceed(*cluster, 4, "", "warm-up");

  StoppedRank stopped(FollowerOf(*cluster, kVictim));
  ASSERT_TRUE(stopped.stopped());
  const SteadyTime stopped_at = Now();
  ExpectRoutedAround(*cluster, stopped_at);
  if (HasFatalFailure()) return;

  // The rank resumes well before --step-timeout: the stalled collective
  // completes, the replica serves again and the router re-admits it.
  stopped.Continue();
  WorkerCluster& victim = *cluster->replica(kVictim);
  HealthState health = HealthState::kNotServing;
  EXPECT_TRUE(PollUntil(milliseconds(5000),
                        [&] {
                          health = CheckHealth(*victim.channel(), milliseconds(500));
                          return health == HealthState::kServing;
                        }))
      << "health " << HealthStateName(health) << " 5 s after SIGCONT\n"
      << victim.LogTail();
  std::string last;
  EXPECT_TRUE(cluster->WaitState(cluster->RouterId(kVictim), WorkerInfo::STATE_HEALTHY,
                                 milliseconds(5000), &last))
      << "not re-admitted 5 s after SIGCONT: " << last;
  const std::optional<tessera::v1::LoadReport> load = GetLoad(victim.stub(), milliseconds(1000));
  ASSERT_TRUE(load.has_value());
  EXPECT_FALSE(load->stalled());
  // It serves straight away (not through the router, whose placement may
  // prefer the other replica).
  const StreamResult r = RunGenerate(victim.stub(), GreedyRequest({1, 300, 301}, 8),
                                     WithDeadline(milliseconds(20000)));
  EXPECT_TRUE(r.status.ok()) << Describe(r.status);
  EXPECT_EQ(r.tokens.size(), 8u);
  EXPECT_TRUE(victim.job().Running()) << "the replica exited although its rank resumed";
}

}  // namespace
}  // namespace tessera::testing
