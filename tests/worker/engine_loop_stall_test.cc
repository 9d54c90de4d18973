// EngineLoop with a StepWatchdog, over an in-process dummy tiny replica whose
// loop sees a two-rank communicator with a follower that hangs in the idle
// heartbeat's Barrier until the test lets it go: the loop reports itself
// stalled (load(), and Submit refuses with UNAVAILABLE) within the bound, and
// serves again once the heartbeat completes; a heartbeat that times out (the
// communicator's --step-timeout) still fails the replica.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/requests.h"
#include "worker/replica.h"
#include "worker/server/engine_loop.h"
#include "worker/server/step_watchdog.h"

namespace tessera {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// Rank 0 of a two-rank replica whose follower only joins a Barrier once the
// gate is open; a closed gate fails the Barrier with DEADLINE_EXCEEDED after
// `timeout` (like an MPI communicator with --step-timeout). Broadcast (the
// plan) completes at the root alone, as with MPI.
class GatedComm : public Communicator {
 public:
  explicit GatedComm(absl::Duration timeout) : timeout_(timeout) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  absl::Status AllReduceSum(Tensor&) override { return absl::UnimplementedError("not here"); }
  absl::Status AllGather(const Tensor&, Tensor&) override {
    return absl::UnimplementedError("not here");
  }
  absl::Status Broadcast(std::string&, int) override { return absl::OkStatus(); }
  absl::Status Barrier() override {
    absl::MutexLock lock(&mu_);
    ++barriers_;
    if (!mu_.AwaitWithTimeout(absl::Condition(&open_), timeout_)) {
      return absl::DeadlineExceededError("Barrier did not complete (test timeout)");
    }
    return absl::OkStatus();
  }
  std::string name() const override { return "gated"; }

  void SetOpen(bool open) {
    absl::MutexLock lock(&mu_);
    open_ = open;
  }
  int barriers() const {
    absl::MutexLock lock(&mu_);
    return barriers_;
  }

 private:
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  int barriers_ ABSL_GUARDED_BY(mu_) = 0;
};

// The watchdog's verdicts, waited on with a bound.
class Verdicts {
 public:
  StepWatchdog::Callback callback() {
    return [this](const StepWatchdog::Event& e) {
      absl::MutexLock lock(&mu_);
      stalled_.push_back(e.stalled);
    };
  }
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stalled_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
  }
  std::vector<bool> stalled() const {
    absl::MutexLock lock(&mu_);
    return stalled_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<bool> stalled_ ABSL_GUARDED_BY(mu_);
};

// Counts tokens until the request ends.
class Sink : public RequestSink {
 public:
  void OnScheduled() override {}
  bool OnOutput(RequestOutput o) override {
    absl::MutexLock lock(&mu_);
    tokens_ += static_cast<int>(o.new_tokens.size());
    if (o.finished()) done_ = true;
    return false;
  }
  void OnError(absl::Status s) override {
    absl::MutexLock lock(&mu_);
    error_ = std::move(s);
    done_ = true;
  }
  bool WaitDone() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(60));
  }
  int tokens() {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  absl::Status error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  int tokens_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

class EngineLoopStallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ReplicaOptions o;
    o.dummy_preset = "tiny";
    o.dummy_seed = 7;
    o.cache.block_size = 16;
    o.cache.num_blocks = 64;
    o.threads = 1;
    auto r = BuildReplica(o, MakeSingleProcessCommunicator());
    ASSERT_TRUE(r.ok()) << r.status();
    replica_ = *std::move(r);
  }
  // The loop drives the replica's engine but heartbeats over `comm`.
  std::unique_ptr<EngineLoop> MakeLoop(Communicator& comm, StepWatchdog& watchdog) {
    EngineLoopOptions o;
    o.idle_heartbeat_interval = milliseconds(10);
    o.log_stats_interval = milliseconds(0);
    o.watchdog = &watchdog;
    return std::make_unique<EngineLoop>(*replica_->engine, comm, nullptr, o);
  }
  static StallOptions Bound(int ms) {
    StallOptions s;
    s.floor = milliseconds(ms);
    s.cap = milliseconds(ms);
    return s;
  }
  std::unique_ptr<Replica> replica_;
};

TEST_F(EngineLoopStallTest, HungHeartbeatStallsTheLoopUntilItCompletes) {
  GatedComm comm(absl::Seconds(60));
  Verdicts verdicts;
  // 1 s: far above a tiny step or heartbeat, even on a loaded machine.
  StepWatchdog watchdog(Bound(1000), verdicts.callback());
  auto loop = MakeLoop(comm, watchdog);
  loop->Start();
  ASSERT_TRUE(verdicts.WaitFor(1)) << "a heartbeat hung for 20 s was never reported";
  EXPECT_EQ(verdicts.stalled(), std::vector<bool>{true});
  EXPECT_EQ(comm.barriers(), 1);
  const LoadSnapshot load = loop->load();
  EXPECT_TRUE(load.stalled);
  EXPECT_GE(load.stall_seconds, 1.0);
  auto refused = std::make_shared<Sink>();
  const absl::Status s =
      loop->Submit(testing::GreedyEngineRequest("during", {1, 40, 41}, 4), refused);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("stalled"));

  comm.SetOpen(true);  // the follower resumes: the heartbeat completes after all
  ASSERT_TRUE(verdicts.WaitFor(2));
  EXPECT_FALSE(verdicts.stalled()[1]) << "the completed heartbeat was not reported";
  EXPECT_FALSE(loop->load().stalled);
  auto served = std::make_shared<Sink>();
  ASSERT_TRUE(loop->Submit(testing::GreedyEngineRequest("after", {1, 40, 41}, 4), served).ok());
  ASSERT_TRUE(served->WaitDone());
  EXPECT_TRUE(served->error().ok()) << served->error();
  EXPECT_EQ(served->tokens(), 4);

  loop->Drain(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  EXPECT_TRUE(loop->Wait().ok());
}

TEST_F(EngineLoopStallTest, StepTimeoutStillFailsTheReplica) {
  // The watchdog flags the hung heartbeat at 200 ms; the communicator's own
  // timeout (2 s here, --step-timeout in the worker) then fails the loop.
  GatedComm comm(absl::Seconds(2));
  Verdicts verdicts;
  StepWatchdog watchdog(Bound(200), verdicts.callback());
  auto loop = MakeLoop(comm, watchdog);
  loop->Start();
  ASSERT_TRUE(verdicts.WaitFor(1));
  EXPECT_TRUE(verdicts.stalled()[0]);
  const absl::Status status = loop->Wait();  // bounded: the Barrier times out
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  auto late = std::make_shared<Sink>();
  const absl::Status s = loop->Submit(testing::GreedyEngineRequest("late", {1, 40}, 2), late);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("replica failed"));
}

}  // namespace
}  // namespace tessera
