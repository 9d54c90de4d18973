// ServingState: health is SERVING only while started and neither draining,
// failed nor stalled; stalled comes and goes, draining and failed stay; the
// bound function sees each change once, in order, and nothing after Bind({}).
#include "worker/server/serving_state.h"

#include <vector>

#include "gtest/gtest.h"

namespace tessera {
namespace {

class ServingStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.Bind([this](bool serving) { applied_.push_back(serving); });
  }
  ServingState state_;
  std::vector<bool> applied_;  // written under state_'s lock
};

TEST_F(ServingStateTest, StalledComesAndGoesUntilDraining) {
  EXPECT_EQ(applied_, std::vector<bool>{false});  // Bind applies the current value
  state_.SetStalled(true);                        // before start: still not serving
  EXPECT_FALSE(state_.serving());
  state_.SetStarted();
  EXPECT_FALSE(state_.serving());
  state_.SetStalled(false);
  EXPECT_TRUE(state_.serving());
  state_.SetStalled(true);
  EXPECT_FALSE(state_.serving());
  state_.SetStalled(false);
  EXPECT_TRUE(state_.serving());
  state_.SetDraining();
  EXPECT_FALSE(state_.serving());
  state_.SetStalled(true);
  state_.SetStalled(false);  // recovering from a stall does not undo the drain
  EXPECT_FALSE(state_.serving());
  EXPECT_EQ(applied_, (std::vector<bool>{false, true, false, true, false}));
}

TEST_F(ServingStateTest, FailedIsForGoodAndUnbindStopsApplying) {
  state_.SetStarted();
  state_.SetFailed();
  state_.SetStalled(false);
  EXPECT_FALSE(state_.serving());
  EXPECT_EQ(applied_, (std::vector<bool>{false, true, false}));
  state_.Bind({});
  ServingState other;
  other.SetStarted();
  EXPECT_TRUE(other.serving());  // no function bound: just the state
  state_.SetDraining();
  EXPECT_EQ(applied_.size(), 3u);
}

}  // namespace
}  // namespace tessera
