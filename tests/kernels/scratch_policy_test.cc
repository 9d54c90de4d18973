// The decision behind the CUDA ops' grow-on-demand scratch
// (kernels/cuda/scratch.h), without a GPU (label unit): reuse what is large
// enough, grow in MiB steps otherwise, and never grow while the stream
// captures a CUDA graph (an allocation would break the capture, and freeing
// the old buffer would leave graphs captured at its address dangling).
#include "gtest/gtest.h"
#include "kernels/cuda/scratch.h"

namespace tessera::ops::cuda {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(ScratchPolicyTest, ReusesWhatIsLargeEnough) {
  for (bool capturing : {false, true}) {
    const ScratchDecision d = DecideScratch(4 * kMiB, 3 * kMiB, capturing);
    EXPECT_EQ(d.action, ScratchAction::kReuse);
    EXPECT_EQ(DecideScratch(4 * kMiB, 4 * kMiB, capturing).action, ScratchAction::kReuse);
  }
}

TEST(ScratchPolicyTest, GrowsInMibStepsOutsideCapture) {
  ScratchDecision d = DecideScratch(0, 1, false);
  EXPECT_EQ(d.action, ScratchAction::kGrow);
  EXPECT_EQ(d.bytes, kMiB);
  d = DecideScratch(kMiB, kMiB + 1, false);
  EXPECT_EQ(d.action, ScratchAction::kGrow);
  EXPECT_EQ(d.bytes, 2 * kMiB);
  d = DecideScratch(0, 0, false);  // a first request of nothing still gets a buffer
  EXPECT_EQ(d.action, ScratchAction::kGrow);
  EXPECT_EQ(d.bytes, kMiB);
}

TEST(ScratchPolicyTest, RefusesToGrowDuringCapture) {
  EXPECT_EQ(DecideScratch(kMiB, kMiB + 1, true).action, ScratchAction::kRefuse);
  EXPECT_EQ(DecideScratch(0, 1, true).action, ScratchAction::kRefuse);
}

}  // namespace
}  // namespace tessera::ops::cuda
