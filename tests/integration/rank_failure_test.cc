// `kill -9` of rank 1 of a TP=2 stories260K worker, idle and under load:
// health turns NOT_SERVING (or the server goes away), every client stream
// ends with UNAVAILABLE (never a hang), the mpirun job exits non-zero within
// 10 s, and no tessera-worker process is left.
#include <signal.h>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<WorkerCluster> StartStories(std::string* error) {
  return WorkerCluster::Start({.ranks = 2, .worker_args = StoriesWorkerArgs()}, error);
}

pid_t KillRank1(WorkerCluster& cluster) {
  const std::vector<pid_t> rank1 = cluster.RankPids(1);
  EXPECT_EQ(rank1.size(), 1u) << "rank 1 not found by its marker";
  if (rank1.size() != 1) return -1;
  EXPECT_EQ(kill(rank1[0], SIGKILL), 0);
  return rank1[0];
}

// Health is NOT_SERVING or unreachable within 10 s of the kill.
void ExpectNotServing(WorkerCluster& cluster) {
  HealthState health = HealthState::kServing;
  EXPECT_TRUE(PollUntil(milliseconds(10000),
                        [&] {
                          health = CheckHealth(*cluster.channel(), milliseconds(1000));
                          return health == HealthState::kNotServing ||
                                 health == HealthState::kUnreachable;
                        }))
      << "health still " << HealthStateName(health) << " 10 s after rank 1 died";
}

// The job ends non-zero within `within` and leaves no worker process.
void ExpectJobFailed(WorkerCluster& cluster, std::chrono::steady_clock::time_point killed_at) {
  const std::optional<int> code = cluster.job().WaitExit(
      milliseconds(10000) -
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at));
  ASSERT_TRUE(code.has_value()) << "the job is still running 10 s after rank 1 died";
  EXPECT_NE(*code, 0) << "mpirun exited 0 although a rank was killed";
  ExpectNoWorkerLeft(cluster);
}

TEST(RankFailureTest, KillRank1Idle) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  auto cluster = StartStories(&error);
  ASSERT_NE(cluster, nullptr) << error;
  ASSERT_EQ(CheckHealth(*cluster->channel(), milliseconds(10000)), HealthState::kServing);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_GT(KillRank1(*cluster), 0);
  ExpectNotServing(*cluster);
  const StreamResult r = RunGenerate(cluster->stub(), GreedyRequest({1, 300, 301}, 16),
                                     WithDeadline(milliseconds(15000)));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(r.status);
  ExpectJobFailed(*cluster, killed_at);
}

TEST(RankFailureTest, KillRank1UnderLoad) {
  TESSERA_REQUIRE_STORIES();
  const auto refs = LoadGreedyReference();
  std::string error;
  auto cluster = StartStories(&error);
  ASSERT_NE(cluster, nullptr) << error;
  constexpr int kStreams = 16;
  std::vector<tessera::v1::GenerateRequest> requests;
  for (int i = 0; i < kStreams; ++i) requests.push_back(GreedyRequest(refs[i % 3].prompt, 440));
  // A hung stream would end with DEADLINE_EXCEEDED and fail the test.
  StreamGroup group(cluster->stub(), std::move(requests), WithDeadline(milliseconds(30000)));
  ASSERT_TRUE(group.WaitAllStreaming(milliseconds(30000)))
      << group.streaming() << " of " << kStreams << " streams got a token";
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_GT(KillRank1(*cluster), 0);
  const std::vector<StreamResult> results = group.Join();
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << "stream " << i << ": " << Describe(results[i].status) << " after "
        << results[i].tokens.size() << " tokens";
  }
  ExpectNotServing(*cluster);
  ExpectJobFailed(*cluster, killed_at);
}

}  // namespace
}  // namespace tessera::testing
