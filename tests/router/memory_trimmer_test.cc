// MemoryTrimmer trims once requests have ended and none is in flight, and
// not while one is.
#include "router/memory_trimmer.h"

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"

namespace tessera::router {
namespace {

using std::chrono::milliseconds;
using tessera::testing::PollUntil;

TEST(MemoryTrimmerTest, TrimsAfterRequestsEndedAndNotWhileOneRuns) {
  RelayTracker tracker;
  MemoryTrimmer trimmer(&tracker, absl::Milliseconds(5));
  tracker.Add();
  tracker.Add();
  tracker.Remove();  // one ended, one still in flight: no trim
  // Several intervals pass (the trimmer's own count of looks is not kept,
  // so give it time bounded by a poll on something that must not happen).
  EXPECT_FALSE(PollUntil(milliseconds(100), [&] { return trimmer.trims() > 0; }));
  tracker.Remove();  // idle now
  EXPECT_TRUE(PollUntil(milliseconds(5000), [&] { return trimmer.trims() == 1; }));
  // Nothing ended since: no second trim.
  EXPECT_FALSE(PollUntil(milliseconds(100), [&] { return trimmer.trims() > 1; }));
}

}  // namespace
}  // namespace tessera::router
