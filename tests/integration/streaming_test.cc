// A stories260K worker at TP=2 under mpirun on loopback serves many
// concurrent streaming Generate calls, each equal to llama2.c's greedy
// reference; cancelled streams are aborted within a step and give their KV
// blocks back while the others finish normally.
#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

class StreamingTest : public SharedStoriesClusterTest<StreamingTest> {
 public:
  static WorkerClusterOptions ClusterOptions() {
    return {.ranks = 2, .worker_args = StoriesWorkerArgs()};
  }
};

TEST_F(StreamingTest, ConcurrentStreamsMatchReference) {
  const auto idle = GetLoad(cluster_->stub());
  ASSERT_TRUE(idle.has_value());
  EXPECT_EQ(idle->running(), 0);
  EXPECT_GT(idle->kv_blocks_total(), 0);

  constexpr int kStreams = 32;
  constexpr int kMaxTokens = 64;
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      results[i] = RunGenerate(cluster_->stub(), GreedyRequest(refs_[i % 3].prompt, kMaxTokens,
                                                               "stream-" + std::to_string(i)));
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    const std::string what = "stream " + std::to_string(i);
    ExpectCompleteStream(results[i], refs_[i % 3].prompt.size(), kMaxTokens, what);
    ExpectMatchesReference(results[i], refs_[i % 3], what);
    // Streamed, not sent in one piece at the end.
    EXPECT_GE(results[i].messages, 2) << what;
    EXPECT_EQ(results[i].final_message.request_id(), "stream-" + std::to_string(i)) << what;
  }
  std::optional<tessera::v1::LoadReport> load;
  EXPECT_TRUE(PollUntil(milliseconds(5000),
                        [&] {
                          load = GetLoad(cluster_->stub());
                          return load && load->running() == 0 && load->waiting() == 0 &&
                                 load->kv_blocks_used() == idle->kv_blocks_used();
                        }))
      << "after every stream ended: " << (load ? load->ShortDebugString() : "GetLoad failed")
      << " (idle: " << idle->ShortDebugString() << ")";
}

TEST_F(StreamingTest, CancelledStreamsFreeTheirBlocks) {
  const auto idle = GetLoad(cluster_->stub());
  ASSERT_TRUE(idle.has_value());
  ASSERT_EQ(idle->running(), 0);

  // Odd streams are cancelled after a few tokens; they ask for far more
  // tokens than the even ones, so if they were not aborted they would still
  // be running long after the even ones end.
  constexpr int kStreams = 32;
  constexpr int kKeptTokens = 200;
  constexpr int kCancelledTokens = 440;
  constexpr int kCancelAfter = 4;
  std::atomic<int> kept_unfinished{kStreams / 2};
  std::atomic<int> cancelled_unfinished{kStreams / 2};
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      const bool cancel = i % 2 == 1;
      StreamOptions options;
      if (cancel) options.cancel_after_tokens = kCancelAfter;
      results[i] = RunGenerate(
          cluster_->stub(),
          GreedyRequest(refs_[i % 3].prompt, cancel ? kCancelledTokens : kKeptTokens), options);
      (cancel ? cancelled_unfinished : kept_unfinished).fetch_sub(1);
    });
  }
  // While kept streams are still running, the server's running count must
  // drop to (at most) the kept streams that are left: the cancelled ones
  // were aborted.
  std::optional<tessera::v1::LoadReport> load;
  int kept_left = 0;
  const bool aborted_early = PollUntil(milliseconds(30000), [&] {
    if (cancelled_unfinished.load() > 0) return false;
    kept_left = kept_unfinished.load();
    load = GetLoad(cluster_->stub());
    return kept_left == 0 || (load && load->running() <= kept_left);
  });
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(aborted_early && kept_left > 0)
      << "cancelled sequences kept running until the kept ones ended; last load: "
      << (load ? load->ShortDebugString() : "none") << ", kept streams left " << kept_left;

  for (int i = 0; i < kStreams; ++i) {
    const std::string what = "stream " + std::to_string(i);
    if (i % 2 == 1) {
      EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::CANCELLED)
          << what << ": " << Describe(results[i].status);
      EXPECT_GE(results[i].tokens.size(), static_cast<size_t>(kCancelAfter)) << what;
      EXPECT_LT(results[i].tokens.size(), static_cast<size_t>(kCancelledTokens)) << what;
    } else {
      ExpectCompleteStream(results[i], refs_[i % 3].prompt.size(), kKeptTokens, what);
      ExpectMatchesReference(results[i], refs_[i % 3], what);
    }
  }
  EXPECT_TRUE(PollUntil(milliseconds(5000),
                        [&] {
                          load = GetLoad(cluster_->stub());
                          return load && load->running() == 0 && load->waiting() == 0 &&
                                 load->kv_blocks_used() == idle->kv_blocks_used();
                        }))
      << "blocks or sequences leaked: " << (load ? load->ShortDebugString() : "GetLoad failed")
      << " (idle: " << idle->ShortDebugString() << ")";
  EXPECT_EQ(CheckHealth(*cluster_->channel(), milliseconds(10000)), HealthState::kServing);
}

}  // namespace
}  // namespace tessera::testing
