// A client that disappears (its process killed mid-stream) and a client
// whose deadline passes both end their sequences on the worker within a few
// steps: the running count and the used KV blocks return to their idle
// values long before the requests could have finished by themselves. The
// model (dummy smollm2-135m) is slow on purpose: 1,000 output tokens take
// far longer than the few seconds the checks allow.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kTargetEnv[] = "TESSERA_CANCELLATION_CLIENT_TARGET";
constexpr int kClientStreams = 4;
constexpr int kLongTokens = 1000;

tessera::v1::GenerateRequest LongRequest(int i) {
  return GreedyRequest({1, 40 + i, 41, 42, 43, 44, 45, 46}, kLongTokens);
}

// Not a test of its own: the client process of ClientProcessKilled, run by
// re-executing this binary with kTargetEnv set. Streams until killed.
TEST(CancellationClient, DISABLED_StreamUntilKilled) {
  const char* target = std::getenv(kTargetEnv);
  if (target == nullptr) GTEST_SKIP() << "run by ClientProcessKilled only";
  auto channel = MakeTestChannel(target);
  auto stub = tessera::v1::Worker::NewStub(channel);
  std::vector<tessera::v1::GenerateRequest> requests;
  for (int i = 0; i < kClientStreams; ++i) requests.push_back(LongRequest(i));
  StreamGroup group(*stub, std::move(requests), WithDeadline(milliseconds(300000)));
  group.Join();
}

class CancellationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    cluster_ =
        WorkerCluster::Start({.ranks = 1,
                              .worker_args = {"--dummy", "smollm2-135m", "--num-kv-blocks", "320",
                                              "--max-model-len", "1100", "--log-level", "warn"}},
                             &error);
    ASSERT_NE(cluster_, nullptr) << error;
    const auto idle = GetLoad(cluster_->stub());
    ASSERT_TRUE(idle.has_value());
    idle_ = *idle;
  }

  // Polls GetLoad until nothing runs or waits and the used blocks are back
  // to idle, for at most `timeout`.
  void ExpectBackToIdle(milliseconds timeout, const std::string& what) {
    std::optional<tessera::v1::LoadReport> load;
    EXPECT_TRUE(PollUntil(timeout,
                          [&] {
                            load = GetLoad(cluster_->stub());
                            return load && load->running() == 0 && load->waiting() == 0 &&
                                   load->kv_blocks_used() == idle_.kv_blocks_used();
                          }))
        << what << ": not back to idle within " << timeout.count() << " ms; last load "
        << (load ? load->ShortDebugString() : "none") << " (idle " << idle_.ShortDebugString()
        << ")";
  }

  std::unique_ptr<WorkerCluster> cluster_;
  tessera::v1::LoadReport idle_;
};

TEST_F(CancellationTest, ClientProcessKilled) {
  const std::string log = (std::filesystem::temp_directory_path() /
                           ("tessera_cancellation_client_" + std::to_string(getpid()) + ".log"))
                              .string();
  std::string error;
  auto client = Process::Spawn({"/proc/self/exe", "--gtest_also_run_disabled_tests",
                                "--gtest_filter=CancellationClient.DISABLED_StreamUntilKilled"},
                               log, &error, {std::string(kTargetEnv) + "=" + cluster_->address()});
  ASSERT_NE(client, nullptr) << error;
  std::optional<tessera::v1::LoadReport> load;
  const bool running = PollUntil(milliseconds(30000), [&] {
    load = GetLoad(cluster_->stub());
    return (load && load->running() == kClientStreams) || !client->Running();
  });
  ASSERT_TRUE(running && client->Running())
      << "the client's streams never all ran; last load "
      << (load ? load->ShortDebugString() : "none") << "\n--- client log ---\n"
      << client->LogTail();
  EXPECT_GT(load->kv_blocks_used(), idle_.kv_blocks_used());
  client->KillGroup(milliseconds(0));  // SIGKILL at once: no goodbye on the wire
  std::filesystem::remove(log);
  ExpectBackToIdle(milliseconds(5000), "after the client process was killed");
}

TEST_F(CancellationTest, DeadlineExceeded) {
  const StreamResult r =
      RunGenerate(cluster_->stub(), LongRequest(0), WithDeadline(milliseconds(2000)));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(r.status);
  EXPECT_LT(r.tokens.size(), static_cast<size_t>(kLongTokens));
  ExpectBackToIdle(milliseconds(5000), "after the deadline passed");
}

}  // namespace
}  // namespace tessera::testing
