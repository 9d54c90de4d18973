// StallDetector on a fake clock (time points the test advances): steady steps
// then one stuck step is flagged within its bound; a long but legitimate first
// step or prefill within the floor is not; the adaptive part between floor and
// cap, the cap, the window, and the option checks.
#include "worker/server/stall_detector.h"

#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Clock = StallDetector::Clock;

// A clock that moves only when told.
class FakeClock {
 public:
  Clock::time_point now() const { return now_; }
  void Advance(Clock::duration d) { now_ += d; }

 private:
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1);
};

StallOptions Options(int floor_ms, int cap_ms, double factor = 10.0, int window = 128) {
  StallOptions o;
  o.floor = milliseconds(floor_ms);
  o.cap = milliseconds(cap_ms);
  o.factor = factor;
  o.window = window;
  EXPECT_TRUE(ValidateStallOptions(o).ok());
  return o;
}

// Runs `n` steps of `d` each (whether or not they outlive their bound).
void Steps(StallDetector& det, FakeClock& clock, int n, Clock::duration d) {
  for (int i = 0; i < n; ++i) {
    det.Begin(clock.now());
    clock.Advance(d);
    EXPECT_EQ(det.End(clock.now()), d);
  }
}

TEST(StallDetectorTest, StuckStepAfterSteadyStepsIsFlaggedWithinTheBound) {
  FakeClock clock;
  StallDetector det(Options(/*floor_ms=*/2000, /*cap_ms=*/3000));
  for (int i = 0; i < 200; ++i) {
    det.Begin(clock.now());
    clock.Advance(milliseconds(20));
    EXPECT_FALSE(det.Stalled(clock.now())) << "a steady 20 ms step flagged";
    det.End(clock.now());
  }
  EXPECT_EQ(det.p99(), milliseconds(20));
  // 10 x 20 ms is below the floor: the floor rules.
  EXPECT_EQ(det.bound(), milliseconds(2000));

  det.Begin(clock.now());
  clock.Advance(milliseconds(1999));
  EXPECT_FALSE(det.Stalled(clock.now()));
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(det.Stalled(clock.now())) << "not flagged at its bound";
  EXPECT_EQ(det.deadline(), det.begin() + milliseconds(2000));
  clock.Advance(milliseconds(30000));
  EXPECT_TRUE(det.Stalled(clock.now()));
  // It completes after all: recorded, and no longer stalled.
  EXPECT_EQ(det.End(clock.now()), milliseconds(32000));
  EXPECT_FALSE(det.Stalled(clock.now()));
  EXPECT_FALSE(det.in_step());
}

TEST(StallDetectorTest, LongFirstStepOrPrefillWithinTheFloorIsNotFlagged) {
  FakeClock clock;
  StallDetector det(Options(/*floor_ms=*/2000, /*cap_ms=*/3000));
  // The first step (no history: warm-up, a big prefill) gets the floor.
  EXPECT_EQ(det.bound(), milliseconds(2000));
  det.Begin(clock.now());
  clock.Advance(milliseconds(1900));
  EXPECT_FALSE(det.Stalled(clock.now()));
  det.End(clock.now());

  // After many fast decode steps, a prefill 50x slower but within the floor.
  Steps(det, clock, 300, milliseconds(5));
  det.Begin(clock.now());
  clock.Advance(milliseconds(1500));
  EXPECT_FALSE(det.Stalled(clock.now())) << "a 1.5 s prefill counted as a hang";
  det.End(clock.now());
}

TEST(StallDetectorTest, BoundFollowsSlowStepsUpToTheCap) {
  FakeClock clock;
  StallDetector det(Options(/*floor_ms=*/100, /*cap_ms=*/3000, /*factor=*/10.0));
  Steps(det, clock, 100, milliseconds(50));
  EXPECT_EQ(det.bound(), milliseconds(500));  // 10 x p99
  det.Begin(clock.now());
  clock.Advance(milliseconds(499));
  EXPECT_FALSE(det.Stalled(clock.now()));
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(det.Stalled(clock.now()));
  det.End(clock.now());

  // Very slow steps: the cap bounds the detection time.
  Steps(det, clock, 200, milliseconds(1000));
  EXPECT_EQ(det.bound(), milliseconds(3000));
  det.Begin(clock.now());
  clock.Advance(milliseconds(3000));
  EXPECT_TRUE(det.Stalled(clock.now()));
}

TEST(StallDetectorTest, P99IgnoresRareOutliersAndForgetsOldSteps) {
  FakeClock clock;
  StallDetector det(Options(/*floor_ms=*/10, /*cap_ms=*/100000, /*factor=*/2.0, /*window=*/200));
  Steps(det, clock, 199, milliseconds(10));
  Steps(det, clock, 1, milliseconds(5000));  // one outlier in 200: above the p99
  EXPECT_EQ(det.p99(), milliseconds(10));
  EXPECT_EQ(det.bound(), milliseconds(20));
  Steps(det, clock, 2, milliseconds(5000));  // 3 in 200: now the p99
  EXPECT_EQ(det.p99(), milliseconds(5000));
  // 200 newer steps push them all out of the window.
  Steps(det, clock, 200, milliseconds(40));
  EXPECT_EQ(det.recorded(), 200u);
  EXPECT_EQ(det.p99(), milliseconds(40));
  EXPECT_EQ(det.bound(), milliseconds(80));
}

TEST(StallDetectorTest, BoundIsFixedWhenTheStepBegins) {
  FakeClock clock;
  StallDetector det(Options(/*floor_ms=*/100, /*cap_ms=*/1000, /*factor=*/4.0));
  Steps(det, clock, 10, milliseconds(50));
  det.Begin(clock.now());
  EXPECT_EQ(det.step_bound(), milliseconds(200));
  clock.Advance(milliseconds(200));
  EXPECT_TRUE(det.Stalled(clock.now()));
  EXPECT_EQ(det.End(Clock::time_point()), Clock::duration::zero())
      << "a clock that went backwards must not record a negative step";
  EXPECT_EQ(det.End(clock.now()), Clock::duration::zero()) << "End while idle records nothing";
  EXPECT_EQ(det.recorded(), 11u);
}

TEST(StallDetectorTest, HugeFactorSaturatesAtTheCap) {
  FakeClock clock;
  StallDetector det(Options(/*floor_ms=*/100, /*cap_ms=*/2000, /*factor=*/1e300));
  Steps(det, clock, 3, milliseconds(1));
  EXPECT_EQ(det.bound(), milliseconds(2000));
}

TEST(StallDetectorTest, OptionChecksNameTheFieldAndLimit) {
  StallOptions o;
  EXPECT_TRUE(ValidateStallOptions(o).ok());
  o.floor = milliseconds(0);
  EXPECT_THAT(ValidateStallOptions(o).message(), HasSubstr("floor must be > 0"));
  o = StallOptions{};
  o.cap = milliseconds(1000);
  o.floor = milliseconds(2000);
  EXPECT_THAT(ValidateStallOptions(o).message(), HasSubstr("must be >= the floor"));
  o = StallOptions{};
  o.factor = 0.5;
  EXPECT_THAT(ValidateStallOptions(o).message(), HasSubstr("factor must be a finite number >= 1"));
  o = StallOptions{};
  o.window = 0;
  EXPECT_THAT(ValidateStallOptions(o).message(), HasSubstr("window must be >= 1"));
}

}  // namespace
}  // namespace tessera
