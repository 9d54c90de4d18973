// Graceful shutdown of a TP=2 stories260K worker under load: SIGTERM or
// SIGINT to the leader (rank 0), or the Drain RPC. Admitted requests run to
// their end; requests after the drain began get UNAVAILABLE; the mpirun job
// exits 0 within --shutdown-timeout.
#include <signal.h>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/worker_cluster.h"
#include "tests/testing/sanitizers.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

// Under ASan the same streams take several times longer to run to their end.
constexpr int kShutdownTimeoutS = kSanitizerBuild ? 90 : 20;
constexpr int kStreams = 16;
constexpr int kMaxTokens = 400;

std::unique_ptr<WorkerCluster> StartStories(std::string* error) {
  return WorkerCluster::Start(
      {.ranks = 2,
       .worker_args = StoriesWorkerArgs({"--shutdown-timeout", std::to_string(kShutdownTimeoutS)})},
      error);
}

std::vector<tessera::v1::GenerateRequest> LongRequests(const std::vector<GreedyReference>& refs) {
  std::vector<tessera::v1::GenerateRequest> requests;
  for (int i = 0; i < kStreams; ++i) {
    requests.push_back(
        GreedyRequest(refs[i % refs.size()].prompt, kMaxTokens, "drain-" + std::to_string(i)));
  }
  return requests;
}

// After the drain began (GetLoad says draining, or the server stopped
// answering), a new Generate gets UNAVAILABLE.
void ExpectNewRequestsRefused(WorkerCluster& cluster) {
  std::optional<tessera::v1::LoadReport> load;
  grpc::Status load_status;
  EXPECT_TRUE(PollUntil(milliseconds(5000),
                        [&] {
                          load = GetLoad(cluster.stub(), milliseconds(2000), &load_status);
                          return !load || load->draining();
                        }))
      << "GetLoad never reported draining: " << (load ? load->ShortDebugString() : "");
  for (int i = 0; i < 3; ++i) {
    const StreamResult r =
        RunGenerate(cluster.stub(), GreedyRequest({1, 300}, 4), WithDeadline(milliseconds(10000)));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << "request " << i << " after the drain began: " << Describe(r.status) << ", tokens "
        << r.tokens.size();
  }
}

// Every admitted stream ran to its end (LENGTH, all tokens, the reference).
void ExpectAllFinished(const std::vector<StreamResult>& results,
                       const std::vector<GreedyReference>& refs) {
  for (size_t i = 0; i < results.size(); ++i) {
    const std::string what = "in-flight stream " + std::to_string(i);
    ExpectCompleteStream(results[i], refs[i % refs.size()].prompt.size(), kMaxTokens, what);
    ExpectMatchesReference(results[i], refs[i % refs.size()], what);
  }
}

void ExpectJobExitsZero(WorkerCluster& cluster) {
  const std::optional<int> code =
      cluster.job().WaitExit(milliseconds((kShutdownTimeoutS + 10) * 1000));
  ASSERT_TRUE(code.has_value()) << "the job did not exit within --shutdown-timeout + 10 s";
  EXPECT_EQ(*code, 0) << "mpirun exit code";
  ExpectNoWorkerLeft(cluster);
}

class DrainTest : public ::testing::TestWithParam<int> {};

TEST_P(DrainTest, SignalToLeaderUnderLoad) {
  TESSERA_REQUIRE_STORIES();
  const int sig = GetParam();
  const auto refs = LoadGreedyReference();
  std::string error;
  auto cluster = StartStories(&error);
  ASSERT_NE(cluster, nullptr) << error;
  const std::vector<pid_t> leader = cluster->RankPids(0);
  ASSERT_EQ(leader.size(), 1u) << "rank 0 not found by its marker";

  StreamGroup group(cluster->stub(), LongRequests(refs), WithDeadline(milliseconds(60000)));
  ASSERT_TRUE(group.WaitAllStreaming(milliseconds(30000)))
      << group.streaming() << " of " << kStreams << " streams got a token";
  ASSERT_EQ(kill(leader[0], sig), 0);
  ExpectNewRequestsRefused(*cluster);
  ExpectAllFinished(group.Join(), refs);
  ExpectJobExitsZero(*cluster);
}

INSTANTIATE_TEST_SUITE_P(Signals, DrainTest, ::testing::Values(SIGTERM, SIGINT),
                         [](const auto& info) {
                           return std::string(info.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

TEST(DrainRpcTest, DrainUnderLoad) {
  TESSERA_REQUIRE_STORIES();
  const auto refs = LoadGreedyReference();
  std::string error;
  auto cluster = StartStories(&error);
  ASSERT_NE(cluster, nullptr) << error;

  StreamGroup group(cluster->stub(), LongRequests(refs), WithDeadline(milliseconds(60000)));
  ASSERT_TRUE(group.WaitAllStreaming(milliseconds(30000)))
      << group.streaming() << " of " << kStreams << " streams got a token";
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(10000));
  tessera::v1::DrainResponse drained;
  const grpc::Status status = cluster->stub().Drain(&ctx, tessera::v1::DrainRequest(), &drained);
  ASSERT_TRUE(status.ok()) << Describe(status);
  // Every stream had a token and none can have ended (each needs 400 steps).
  EXPECT_EQ(drained.in_flight(), kStreams);
  ExpectNewRequestsRefused(*cluster);
  ExpectAllFinished(group.Join(), refs);
  ExpectJobExitsZero(*cluster);
}

TEST(DrainRpcTest, IdleDrainExitsPromptly) {
  TESSERA_REQUIRE_STORIES();
  std::string error;
  auto cluster = StartStories(&error);
  ASSERT_NE(cluster, nullptr) << error;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(10000));
  tessera::v1::DrainResponse drained;
  const grpc::Status status = cluster->stub().Drain(&ctx, tessera::v1::DrainRequest(), &drained);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(drained.in_flight(), 0);
  const std::optional<int> code = cluster->job().WaitExit(milliseconds(10000));
  ASSERT_TRUE(code.has_value()) << "an idle worker did not exit within 10 s of Drain";
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace tessera::testing
