#include "router/circuit_breaker.h"

#include <string>

#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using State = CircuitBreaker::State;

constexpr absl::Duration kOpenFor = absl::Seconds(5);

CircuitBreaker MakeBreaker(int threshold = 3) {
  return CircuitBreaker({.failure_threshold = threshold, .open_duration = kOpenFor});
}

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

// Drives a breaker to open at `at`.
void Trip(CircuitBreaker& b, absl::Time at, int threshold = 3) {
  for (int i = 0; i < threshold; ++i) b.RecordFailure(at);
  ASSERT_EQ(b.state(), State::kOpen);
}

TEST(CircuitBreakerTest, StartsClosedAndAllows) {
  CircuitBreaker b = MakeBreaker();
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_TRUE(b.WouldAllow(kT0));
  EXPECT_TRUE(b.AllowRequest(kT0));
  EXPECT_TRUE(b.AllowRequest(kT0));  // closed admits everyone
  EXPECT_EQ(b.consecutive_failures(), 0);
}

TEST(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  CircuitBreaker b = MakeBreaker(3);
  b.RecordFailure(kT0);
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.consecutive_failures(), 2);
  EXPECT_TRUE(b.AllowRequest(kT0));
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_FALSE(b.WouldAllow(kT0));
  EXPECT_FALSE(b.AllowRequest(kT0));
}

TEST(CircuitBreakerTest, SuccessResetsTheFailureCount) {
  CircuitBreaker b = MakeBreaker(3);
  b.RecordFailure(kT0);
  b.RecordFailure(kT0);
  b.RecordSuccess();
  EXPECT_EQ(b.consecutive_failures(), 0);
  b.RecordFailure(kT0);
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), State::kClosed);  // not 3 in a row
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), State::kOpen);
}

TEST(CircuitBreakerTest, ThresholdOfOneOpensOnFirstFailure) {
  CircuitBreaker b = MakeBreaker(1);
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), State::kOpen);
}

TEST(CircuitBreakerTest, StaysOpenUntilOpenDurationElapses) {
  CircuitBreaker b = MakeBreaker();
  Trip(b, kT0);
  const absl::Time almost = kT0 + kOpenFor - absl::Milliseconds(1);
  EXPECT_FALSE(b.WouldAllow(almost));
  EXPECT_FALSE(b.AllowRequest(almost));
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_TRUE(b.WouldAllow(kT0 + kOpenFor));
  EXPECT_EQ(b.state(), State::kOpen);  // WouldAllow changes nothing
}

TEST(CircuitBreakerTest, HalfOpenAdmitsExactlyOneProbe) {
  CircuitBreaker b = MakeBreaker();
  Trip(b, kT0);
  const absl::Time later = kT0 + kOpenFor;
  EXPECT_TRUE(b.AllowRequest(later));  // open -> half_open, this is the probe
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_FALSE(b.WouldAllow(later));
  EXPECT_FALSE(b.AllowRequest(later));
  EXPECT_FALSE(b.AllowRequest(later + absl::Hours(1)));  // still one at a time
  EXPECT_EQ(b.state(), State::kHalfOpen);
}

TEST(CircuitBreakerTest, ProbeSuccessCloses) {
  CircuitBreaker b = MakeBreaker();
  Trip(b, kT0);
  ASSERT_TRUE(b.AllowRequest(kT0 + kOpenFor));
  b.RecordSuccess();
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_TRUE(b.AllowRequest(kT0 + kOpenFor));
  EXPECT_TRUE(b.AllowRequest(kT0 + kOpenFor));
}

TEST(CircuitBreakerTest, ProbeFailureReopensAndRestartsTheTimer) {
  CircuitBreaker b = MakeBreaker();
  Trip(b, kT0);
  const absl::Time probe_at = kT0 + kOpenFor + absl::Seconds(1);
  ASSERT_TRUE(b.AllowRequest(probe_at));
  const absl::Time failed_at = probe_at + absl::Seconds(2);
  b.RecordFailure(failed_at);
  EXPECT_EQ(b.state(), State::kOpen);
  // The timer counts from the probe's failure, not from the first opening.
  EXPECT_FALSE(b.AllowRequest(failed_at + kOpenFor - absl::Milliseconds(1)));
  EXPECT_TRUE(b.AllowRequest(failed_at + kOpenFor));
  EXPECT_EQ(b.state(), State::kHalfOpen);
}

TEST(CircuitBreakerTest, ReleaseProbeLetsAnotherProbeThrough) {
  CircuitBreaker b = MakeBreaker();
  Trip(b, kT0);
  const absl::Time later = kT0 + kOpenFor;
  ASSERT_TRUE(b.AllowRequest(later));
  ASSERT_FALSE(b.AllowRequest(later));
  b.ReleaseProbe();  // the caller picked another worker
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_TRUE(b.WouldAllow(later));
  EXPECT_TRUE(b.AllowRequest(later));
  EXPECT_FALSE(b.AllowRequest(later));
}

TEST(CircuitBreakerTest, ReleaseProbeOutsideHalfOpenChangesNothing) {
  CircuitBreaker closed = MakeBreaker();
  closed.ReleaseProbe();
  EXPECT_EQ(closed.state(), State::kClosed);
  EXPECT_TRUE(closed.AllowRequest(kT0));

  CircuitBreaker open = MakeBreaker();
  Trip(open, kT0);
  open.ReleaseProbe();
  EXPECT_EQ(open.state(), State::kOpen);
  EXPECT_FALSE(open.AllowRequest(kT0 + absl::Seconds(1)));
}

TEST(CircuitBreakerTest, LateOutcomesWhileOpenDoNotMoveTheTimer) {
  CircuitBreaker b = MakeBreaker();
  Trip(b, kT0);
  b.RecordSuccess();  // a request sent before the breaker opened
  EXPECT_EQ(b.state(), State::kOpen);
  b.RecordFailure(kT0 + absl::Seconds(4));  // likewise
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.consecutive_failures(), 4);
  EXPECT_TRUE(b.AllowRequest(kT0 + kOpenFor));  // timer from the first opening
}

TEST(CircuitBreakerTest, FullCycle) {
  CircuitBreaker b = MakeBreaker(2);
  absl::Time t = kT0;
  for (int round = 0; round < 3; ++round) {
    b.RecordFailure(t);
    b.RecordFailure(t);
    ASSERT_EQ(b.state(), State::kOpen) << round;
    t += kOpenFor;
    ASSERT_TRUE(b.AllowRequest(t)) << round;
    b.RecordSuccess();
    ASSERT_EQ(b.state(), State::kClosed) << round;
  }
}

TEST(CircuitBreakerTest, StateNames) {
  EXPECT_EQ(std::string(CircuitStateName(State::kClosed)), "closed");
  EXPECT_EQ(std::string(CircuitStateName(State::kOpen)), "open");
  EXPECT_EQ(std::string(CircuitStateName(State::kHalfOpen)), "half_open");
}

}  // namespace
}  // namespace tessera::router
