// Shared bits of the integration tests: the stories260K worker flags and
// reference checks. Header-only; for tests.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tessera/v1/worker.pb.h"
#include "tests/integration/process.h"
#include "tests/integration/stream.h"
#include "tests/integration/worker_cluster.h"
#include "tests/testing/stories.h"

namespace tessera::testing {

// Worker flags for stories260K on this small machine: one thread per rank,
// a KV pool far larger than the tests need, quiet logs.
// $TESSERA_WORKER_LOG_LEVEL (default warn) sets the workers' --log-level.
inline std::string WorkerLogLevel() {
  const char* env = std::getenv("TESSERA_WORKER_LOG_LEVEL");
  return env != nullptr && *env != '\0' ? env : "warn";
}

inline std::vector<std::string> StoriesWorkerArgs(std::vector<std::string> extra = {}) {
  // --device cpu: the float32 CPU path the reference was made with, also on a
  // GPU machine (where --device auto would pick the GPU).
  std::vector<std::string> args = {
      "--model", StoriesDir(),      "--device", "cpu",         "--threads",
      "1",       "--num-kv-blocks", "512",      "--log-level", WorkerLogLevel()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A stream that ran to its end: OK, one final message (nothing after it)
// with finish_reason LENGTH, `max_tokens` tokens, and usage that agrees.
inline void ExpectCompleteStream(const StreamResult& r, size_t prompt_len, int max_tokens,
                                 const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(r.status.ok()) << Describe(r.status);
  ASSERT_TRUE(r.finished) << "the stream ended without a message carrying a finish_reason";
  EXPECT_EQ(r.messages_after_finish, 0);
  EXPECT_EQ(r.final_message.finish_reason(), tessera::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(r.tokens.size(), static_cast<size_t>(max_tokens));
  EXPECT_EQ(r.final_message.usage().completion_tokens(), max_tokens);
  EXPECT_EQ(r.final_message.usage().prompt_tokens(), static_cast<int>(prompt_len));
  EXPECT_GT(r.final_message.timings().total_time_us(), 0);
  EXPECT_GT(r.final_message.timings().time_to_first_token_us(), 0);
  EXPECT_LE(r.final_message.timings().time_to_first_token_us(),
            r.final_message.timings().total_time_us());
}

// The first safe_prefix tokens equal llama2.c's greedy continuation.
inline void ExpectMatchesReference(const StreamResult& r, const GreedyReference& ref,
                                   const std::string& what) {
  SCOPED_TRACE(what);
  const size_t n = std::min<size_t>(ref.safe_prefix, ref.generated.size());
  ASSERT_GE(r.tokens.size(), n);
  for (size_t k = 0; k < n; ++k) {
    ASSERT_EQ(r.tokens[k], ref.generated[k]) << "first difference at generated token " << k;
  }
}

// A suite whose tests share one stories260K worker job, started once by
// SetUpTestSuite with Derived::ClusterOptions(). Tests skip without the model
// and fail with the start error when the job did not come up.
template <typename Derived>
class SharedStoriesClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveStories()) return;
    std::string error;
    cluster_ = WorkerCluster::Start(Derived::ClusterOptions(), &error).release();
    if (cluster_ == nullptr) start_error_ = error;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    TESSERA_REQUIRE_STORIES();
    ASSERT_NE(cluster_, nullptr) << start_error_;
    refs_ = LoadGreedyReference();
    ASSERT_EQ(refs_.size(), 3u);
  }
  void TearDown() override {
    if (cluster_ != nullptr) cluster_->PrintLogIfTestFailed();
  }

  inline static WorkerCluster* cluster_ = nullptr;
  inline static std::string start_error_;
  std::vector<GreedyReference> refs_;
};

// Once the job has exited, no tessera-worker process of it may be left
// (polled briefly: the last ranks can take a moment to be reaped).
inline void ExpectNoWorkerLeft(WorkerCluster& cluster) {
  std::vector<pid_t> left;
  EXPECT_TRUE(PollUntil(std::chrono::milliseconds(3000),
                        [&] {
                          left = cluster.WorkerPids();
                          return left.empty();
                        }))
      << left.size() << " tessera-worker processes left after the job exited";
}

}  // namespace tessera::testing
