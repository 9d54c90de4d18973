// StepWatchdog's thread on the real clock with short bounds: a step left
// open is reported stalled (once), its end reports the recovery, fast steps
// never report, and Stop() ends the thread with a step still open. Every wait
// is a bounded wait on the callback's condition, never a sleep.
#include "worker/server/step_watchdog.h"

#include <chrono>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using std::chrono::milliseconds;

// Records the watchdog's events.
class Events {
 public:
  StepWatchdog::Callback callback() {
    return [this](const StepWatchdog::Event& e) {
      absl::MutexLock lock(&mu_);
      events_.push_back(e);
    };
  }
  // Waits (bounded) until `n` events arrived.
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<StepWatchdog::Event> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<StepWatchdog::Event> events_ ABSL_GUARDED_BY(mu_);
};

StallOptions Short(int floor_ms, int cap_ms) {
  StallOptions o;
  o.floor = milliseconds(floor_ms);
  o.cap = milliseconds(cap_ms);
  return o;
}

TEST(StepWatchdogTest, StuckStepIsReportedThenItsEndRecovers) {
  Events events;
  StepWatchdog watchdog(Short(50, 50), events.callback());
  const auto begun = std::chrono::steady_clock::now();
  watchdog.Begin();
  ASSERT_TRUE(events.WaitFor(1)) << "a step open for 10 s was never reported";
  const auto flagged = std::chrono::steady_clock::now();
  EXPECT_GE(flagged - begun, milliseconds(50)) << "reported before its bound";
  StepWatchdog::State state = watchdog.state();
  EXPECT_TRUE(state.stalled);
  EXPECT_GE(state.elapsed, milliseconds(50));
  EXPECT_EQ(state.bound, milliseconds(50));
  {
    const std::vector<StepWatchdog::Event> e = events.events();
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(e[0].stalled);
    EXPECT_GE(e[0].elapsed, milliseconds(50));
  }

  watchdog.End();
  ASSERT_TRUE(events.WaitFor(2)) << "the step's end was not reported";
  const std::vector<StepWatchdog::Event> e = events.events();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_FALSE(e[1].stalled);
  EXPECT_GE(e[1].elapsed, milliseconds(50));
  EXPECT_FALSE(watchdog.state().stalled);
}

TEST(StepWatchdogTest, FastStepsAreNeverReported) {
  Events events;
  // 2 s floor: a 1000-step loop of near-zero steps never comes close.
  StepWatchdog watchdog(Short(2000, 2000), events.callback());
  for (int i = 0; i < 1000; ++i) {
    StepWatchdog::Scope step(&watchdog);
  }
  // A stuck step after them is still reported: the thread is alive and
  // watching (and nothing was reported before it).
  watchdog.Begin();
  ASSERT_TRUE(events.WaitFor(1));
  EXPECT_TRUE(events.events()[0].stalled);
  watchdog.End();
  ASSERT_TRUE(events.WaitFor(2));
  EXPECT_EQ(events.events().size(), 2u);
}

TEST(StepWatchdogTest, NextStepStartsBeforeTheRecoveryIsNoticed) {
  Events events;
  StepWatchdog watchdog(Short(50, 50), events.callback());
  watchdog.Begin();
  ASSERT_TRUE(events.WaitFor(1));
  // End and the next Begin back to back: the stalled step still recovers,
  // and the new one is watched on its own (stuck too: reported again).
  watchdog.End();
  watchdog.Begin();
  ASSERT_TRUE(events.WaitFor(3));
  const std::vector<StepWatchdog::Event> e = events.events();
  EXPECT_TRUE(e[0].stalled);
  EXPECT_FALSE(e[1].stalled);
  EXPECT_TRUE(e[2].stalled);
  watchdog.End();
}

TEST(StepWatchdogTest, ScopeWithoutWatchdogAndStopWithAnOpenStep) {
  { StepWatchdog::Scope none(nullptr); }  // no watchdog: nothing happens
  Events events;
  StepWatchdog watchdog(Short(60000, 60000), events.callback());
  watchdog.Begin();
  watchdog.Stop();  // returns at once although the step's deadline is a minute away
  watchdog.Stop();  // idempotent
  EXPECT_TRUE(events.events().empty());
  EXPECT_FALSE(watchdog.state().stalled);
}

}  // namespace
}  // namespace tessera
