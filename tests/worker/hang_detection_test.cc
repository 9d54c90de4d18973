// tessera-worker's --stall-* flags: the defaults, off with --stall-cap 0,
// each out-of-range value refused with a message naming the flag and its
// limit; and MakeStallWatchdog: none for one rank or with detection off, and
// its verdicts turn the health it is given.
#include "worker/hang_detection.h"

#include <chrono>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class HangDetectionTest : public ::testing::Test {
 protected:
  absl::FlagSaver saver_;  // every test starts from the defaults
};

TEST_F(HangDetectionTest, DefaultsAndOff) {
  absl::StatusOr<std::optional<StallOptions>> o = StallOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_TRUE(o->has_value());
  EXPECT_EQ((*o)->floor, milliseconds(2000));
  EXPECT_EQ((*o)->cap, milliseconds(3000));
  EXPECT_EQ((*o)->factor, 10.0);
  EXPECT_EQ((*o)->window, 128);
  absl::SetFlag(&FLAGS_stall_cap, 0.0);
  o = StallOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_FALSE(o->has_value());
}

TEST_F(HangDetectionTest, OutOfRangeFlagsAreRefusedByName) {
  auto error = [] {
    absl::StatusOr<std::optional<StallOptions>> o = StallOptionsFromFlags();
    EXPECT_FALSE(o.ok());
    return o.ok() ? std::string() : std::string(o.status().message());
  };
  absl::SetFlag(&FLAGS_stall_cap, -1.0);
  EXPECT_THAT(error(), HasSubstr("--stall-cap must be 0 (off) or in (0, 86400] s, got -1"));
  absl::SetFlag(&FLAGS_stall_cap, 1.0);
  absl::SetFlag(&FLAGS_stall_floor, 2.0);
  EXPECT_THAT(error(), HasSubstr("--stall-floor must be in [0.001, --stall-cap = 1] s, got 2"));
  absl::SetFlag(&FLAGS_stall_floor, 0.5);
  absl::SetFlag(&FLAGS_stall_factor, 0.9);
  EXPECT_THAT(error(), HasSubstr("--stall-factor must be a finite number >= 1, got 0.9"));
  absl::SetFlag(&FLAGS_stall_factor, 2.0);
  absl::SetFlag(&FLAGS_stall_window, 0);
  EXPECT_THAT(error(), HasSubstr("--stall-window must be in [1, 65536] steps, got 0"));
}

TEST_F(HangDetectionTest, WatchdogOnlyForSeveralRanksAndItTurnsHealth) {
  ServingState serving;
  serving.SetStarted();
  StallOptions options;
  options.floor = milliseconds(50);
  options.cap = milliseconds(50);
  EXPECT_EQ(MakeStallWatchdog(options, /*ranks=*/1, serving), nullptr);
  EXPECT_EQ(MakeStallWatchdog(std::nullopt, /*ranks=*/2, serving), nullptr);

  absl::Mutex mu;
  bool serving_now = true;
  serving.Bind([&](bool on) {
    absl::MutexLock lock(&mu);
    serving_now = on;
  });
  std::unique_ptr<StepWatchdog> watchdog = MakeStallWatchdog(options, /*ranks=*/2, serving);
  ASSERT_NE(watchdog, nullptr);
  auto is = [&](bool want) {
    absl::MutexLock lock(&mu);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return serving_now == want; };
    return mu.AwaitWithTimeout(absl::Condition(&cond), absl::Seconds(10));
  };
  watchdog->Begin();
  EXPECT_TRUE(is(false)) << "a step stuck for 10 s left the health SERVING";
  watchdog->End();
  EXPECT_TRUE(is(true)) << "the completed step did not restore SERVING";
  watchdog->Stop();
  serving.Bind({});
}

}  // namespace
}  // namespace tessera
