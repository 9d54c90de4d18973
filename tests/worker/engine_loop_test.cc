// EngineLoop over an in-process dummy tiny replica (TP=1), driven from
// several threads: concurrent requests, aborts, sink-ended requests, the
// waiting limit, and drains (complete and timed out).
#include "worker/server/engine_loop.h"

#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/requests.h"
#include "worker/replica.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Replica> MakeTiny(int max_waiting = 4096) {
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dummy_seed = 7;
  o.cache.block_size = 16;
  o.cache.num_blocks = 256;
  o.sched.max_waiting = max_waiting;
  o.threads = 1;
  auto r = BuildReplica(o, MakeSingleProcessCommunicator());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

EngineRequest Greedy(const std::string& id, int max_tokens,
                     std::vector<int32_t> prompt = {1, 40, 41, 42}) {
  return testing::GreedyEngineRequest(id, std::move(prompt), max_tokens);
}

// Collects a request's outputs; can end the request itself after
// `stop_after` tokens (like a stop string).
class Collector : public RequestSink {
 public:
  explicit Collector(int stop_after = -1) : stop_after_(stop_after) {}
  void OnScheduled() override {
    absl::MutexLock lock(&mu_);
    scheduled_ = true;
  }
  bool OnOutput(RequestOutput o) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(done_) << "output after the end";
    EXPECT_TRUE(scheduled_) << "a token before OnScheduled";
    tokens_.insert(tokens_.end(), o.new_tokens.begin(), o.new_tokens.end());
    if (o.finished()) {
      last_ = o;
      done_ = true;
      return false;
    }
    if (stop_after_ >= 0 && static_cast<int>(tokens_.size()) >= stop_after_) {
      done_ = true;
      self_ended_ = true;
      return true;
    }
    return false;
  }
  void OnError(absl::Status s) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(done_) << "error after the end: " << s;
    error_ = s;
    done_ = true;
  }
  // Waits (bounded) for the end; false on timeout.
  bool WaitDone() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(60));
  }
  bool WaitTokens(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return done_ || static_cast<int>(tokens_.size()) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
  }
  std::vector<int32_t> tokens() {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  std::optional<RequestOutput> last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }
  std::optional<absl::Status> error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  const int stop_after_;
  absl::Mutex mu_;
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool self_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int32_t> tokens_ ABSL_GUARDED_BY(mu_);
  std::optional<RequestOutput> last_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> error_ ABSL_GUARDED_BY(mu_);
};

class EngineLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    replica_ = MakeTiny();
    ASSERT_NE(replica_, nullptr);
  }
  std::unique_ptr<EngineLoop> MakeLoop(EngineLoopOptions o = {}) {
    return std::make_unique<EngineLoop>(*replica_->engine, *replica_->comm, &hub_, o);
  }
  std::unique_ptr<Replica> replica_;
  KvEventHub hub_{16};
};

TEST_F(EngineLoopTest, ConcurrentRequestsFromSeveralThreads) {
  auto loop = MakeLoop();
  loop->Start();
  constexpr int kThreads = 4, kPerThread = 5, kTokens = 8;
  std::vector<std::shared_ptr<Collector>> sinks(kThreads * kPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int k = t * kPerThread + i;
        sinks[k] = std::make_shared<Collector>();
        EXPECT_TRUE(loop->Submit(Greedy(absl::StrCat("r", k), kTokens), sinks[k]).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (auto& s : sinks) {
    ASSERT_TRUE(s->WaitDone());
    ASSERT_TRUE(s->last().has_value());
    EXPECT_EQ(s->last()->finish_reason, FinishReason::kLength);
    EXPECT_EQ(s->last()->completion_tokens, kTokens);
    EXPECT_EQ(s->last()->prompt_tokens, 4);
    // Same prompt, greedy: the same tokens whatever the batch.
    EXPECT_EQ(s->tokens(), sinks[0]->tokens());
  }
  EXPECT_EQ(sinks[0]->tokens().size(), static_cast<size_t>(kTokens));
  // The count is the last published snapshot's: at most what was submitted.
  EXPECT_LE(loop->Drain(Clock::now() + std::chrono::seconds(30)), kThreads * kPerThread);
  EXPECT_TRUE(loop->Wait().ok());
  EXPECT_EQ(loop->load().in_flight, 0);
}

TEST_F(EngineLoopTest, AbortEndsTheRequestAndFreesItsBlocks) {
  auto loop = MakeLoop();
  loop->Start();
  auto sink = std::make_shared<Collector>();
  ASSERT_TRUE(loop->Submit(Greedy("long", 1500), sink).ok());
  ASSERT_TRUE(sink->WaitTokens(2));
  loop->Abort("long");
  ASSERT_TRUE(sink->WaitDone());
  ASSERT_TRUE(sink->last().has_value());
  EXPECT_EQ(sink->last()->finish_reason, FinishReason::kAbort);
  EXPECT_LT(sink->tokens().size(), 1500u);
  loop->Drain(Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(loop->Wait().ok());
  const LoadSnapshot load = loop->load();
  EXPECT_EQ(load.running, 0);
  EXPECT_EQ(load.kv_blocks_used, 0);
  EXPECT_EQ(load.in_flight, 0);
  EXPECT_TRUE(load.draining);
}

TEST_F(EngineLoopTest, SinkEndedRequestGetsNothingMore) {
  auto loop = MakeLoop();
  loop->Start();
  auto sink = std::make_shared<Collector>(/*stop_after=*/3);
  ASSERT_TRUE(loop->Submit(Greedy("stopper", 200), sink).ok());
  ASSERT_TRUE(sink->WaitDone());
  EXPECT_EQ(sink->tokens().size(), 3u);
  EXPECT_FALSE(sink->last().has_value());
  loop->Drain(Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(loop->Wait().ok());  // the Collector fails the test on a late output
  EXPECT_EQ(loop->load().kv_blocks_used, 0);
}

TEST_F(EngineLoopTest, EngineRefusalsReachTheSink) {
  auto loop = MakeLoop();
  loop->Start();
  auto a = std::make_shared<Collector>();
  auto b = std::make_shared<Collector>();
  ASSERT_TRUE(loop->Submit(Greedy("same", 1000), a).ok());
  ASSERT_TRUE(loop->Submit(Greedy("same", 4), b).ok());
  ASSERT_TRUE(b->WaitDone());
  ASSERT_TRUE(b->error().has_value());
  EXPECT_EQ(b->error()->code(), absl::StatusCode::kAlreadyExists);
  loop->Abort("same");
  ASSERT_TRUE(a->WaitDone());
  loop->Drain(Clock::now());
  EXPECT_TRUE(loop->Wait().ok());
}

TEST_F(EngineLoopTest, AbortOfARefusedDuplicateSparesTheRunningRequest) {
  // Client b reuses a's id and cancels: its abort names its own sink, so a
  // runs to the end.
  auto loop = MakeLoop();
  loop->Start();
  auto a = std::make_shared<Collector>();
  auto b = std::make_shared<Collector>();
  ASSERT_TRUE(loop->Submit(Greedy("same", 40), a).ok());
  ASSERT_TRUE(a->WaitTokens(1));
  ASSERT_TRUE(loop->Submit(Greedy("same", 4), b).ok());
  loop->Abort("same", b.get());
  ASSERT_TRUE(b->WaitDone());
  ASSERT_TRUE(a->WaitDone());
  ASSERT_TRUE(a->last().has_value());
  EXPECT_EQ(a->last()->finish_reason, FinishReason::kLength);
  EXPECT_EQ(a->tokens().size(), 40u);
  loop->Drain(Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(loop->Wait().ok());
}

TEST_F(EngineLoopTest, IdOfASinkEndedRequestIsFreeAgainAfterItsFinalOutput) {
  auto loop = MakeLoop();
  loop->Start();
  auto first = std::make_shared<Collector>(/*stop_after=*/3);
  ASSERT_TRUE(loop->Submit(Greedy("reused", 200), first).ok());
  ASSERT_TRUE(first->WaitDone());
  // The same id again: refused while the first one's abort is still in the
  // engine, accepted once it is out; never handed the first one's output.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto again = std::make_shared<Collector>();
    ASSERT_TRUE(loop->Submit(Greedy("reused", 5), again).ok());
    ASSERT_TRUE(again->WaitDone());
    if (again->error().has_value()) {
      ASSERT_EQ(again->error()->code(), absl::StatusCode::kAlreadyExists);
      continue;
    }
    ASSERT_TRUE(again->last().has_value());
    EXPECT_EQ(again->last()->finish_reason, FinishReason::kLength);
    EXPECT_EQ(again->tokens().size(), 5u);
    break;
  }
  loop->Drain(Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(loop->Wait().ok());
  EXPECT_EQ(loop->load().kv_blocks_used, 0);
}

TEST_F(EngineLoopTest, WaitingLimitCountsTheIntakeQueue) {
  EngineLoopOptions o;
  o.max_waiting = 2;
  auto loop = MakeLoop(o);  // not started: the intake queue is not drained
  auto s = std::make_shared<Collector>();
  EXPECT_TRUE(loop->Submit(Greedy("a", 2), s).ok());
  EXPECT_TRUE(loop->Submit(Greedy("b", 2), std::make_shared<Collector>()).ok());
  absl::Status full = loop->Submit(Greedy("c", 2), std::make_shared<Collector>());
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("--max-waiting 2"));
  EXPECT_EQ(loop->load().waiting, 2);
  loop->Start();
  ASSERT_TRUE(s->WaitDone());
  loop->Drain(Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(loop->Wait().ok());
}

TEST_F(EngineLoopTest, DrainFinishesInFlightAndRefusesNewRequests) {
  auto loop = MakeLoop();
  loop->Start();
  auto sink = std::make_shared<Collector>();
  ASSERT_TRUE(loop->Submit(Greedy("x", 30), sink).ok());
  EXPECT_GE(loop->Drain(Clock::now() + std::chrono::seconds(60)), 0);
  absl::Status refused = loop->Submit(Greedy("y", 2), std::make_shared<Collector>());
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("draining"));
  EXPECT_TRUE(loop->Wait().ok());
  ASSERT_TRUE(sink->last().has_value());
  EXPECT_EQ(sink->last()->finish_reason, FinishReason::kLength);
  EXPECT_EQ(sink->tokens().size(), 30u);
}

TEST_F(EngineLoopTest, DrainTimeoutEndsTheRestWithUnavailable) {
  auto loop = MakeLoop();
  loop->Start();
  auto sink = std::make_shared<Collector>();
  ASSERT_TRUE(loop->Submit(Greedy("slow", 1500), sink).ok());
  ASSERT_TRUE(sink->WaitTokens(1));
  loop->Drain(Clock::now());
  EXPECT_TRUE(loop->Wait().ok());
  ASSERT_TRUE(sink->error().has_value());
  EXPECT_EQ(sink->error()->code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(sink->error()->message(), HasSubstr("shutdown timeout"));
}

TEST_F(EngineLoopTest, KvEventsReachTheHub) {
  auto loop = MakeLoop();
  loop->Start();
  auto sink = std::make_shared<Collector>();
  std::vector<int32_t> prompt(40, 50);
  ASSERT_TRUE(loop->Submit(Greedy("kv", 2, prompt), sink).ok());
  ASSERT_TRUE(sink->WaitDone());
  loop->Drain(Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(loop->Wait().ok());
  EXPECT_GE(hub_.num_cached(), 2u);  // two full prompt blocks of 16
}

}  // namespace
}  // namespace tessera
