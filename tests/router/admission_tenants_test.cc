// AdmissionController across tenants: waiting tenants get freed slots by
// weight, not by arrival, and the headroom admits a new tenant at once while
// a flood waits. Part of admission_test (admission_test_util.h: Outcome).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "router/admission.h"
#include "tests/router/admission_test_util.h"

namespace tessera::router {
namespace {

using testing::Outcome;

TEST(AdmissionTest, WaitingTenantsGetSlotsByWeightNotByArrival) {
  AdmissionController ac({.max_concurrent = 1, .max_queued = 100});
  ASSERT_EQ(ac.Acquire({"flood", 1.0}, [](absl::Status s) { EXPECT_TRUE(s.ok()); }), 0u);
  std::vector<std::string> order;
  // The flood queues 8 first, then a tenant of weight 3 queues 4.
  for (int i = 0; i < 8; ++i) {
    EXPECT_NE(ac.Acquire({"flood", 1.0},
                         [&order](absl::Status s) {
                           EXPECT_TRUE(s.ok()) << s;
                           order.push_back("flood");
                         }),
              0u);
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_NE(ac.Acquire({"chat", 3.0},
                         [&order](absl::Status s) {
                           EXPECT_TRUE(s.ok()) << s;
                           order.push_back("chat");
                         }),
              0u);
  }
  EXPECT_EQ(ac.queued("flood"), 8);
  EXPECT_EQ(ac.queued("chat"), 4);
  std::string holder = "flood";
  for (int i = 0; i < 12; ++i) {
    ac.Release(holder);
    ASSERT_EQ(order.size(), static_cast<size_t>(i + 1));
    holder = order.back();
  }
  // chat's 4 go out within the first 6 grants (3 per flood grant), not after
  // the flood's 8.
  const std::vector<std::string> first(order.begin(), order.begin() + 6);
  EXPECT_EQ(std::count(first.begin(), first.end(), "chat"), 4);
  ac.Release(holder);
  EXPECT_EQ(ac.running(), 0);
  EXPECT_EQ(ac.queued(), 0);
}

TEST(AdmissionTest, HeadroomAdmitsANewTenantInlineWhileTheFloodWaits) {
  AdmissionController ac({.max_concurrent = 3, .max_queued = 100, .headroom = 1});
  Outcome f1, f2, f3, s1;
  EXPECT_EQ(ac.Acquire({"flood", 1.0}, f1.Callback()), 0u);
  EXPECT_EQ(ac.Acquire({"flood", 1.0}, f2.Callback()), 0u);
  EXPECT_NE(ac.Acquire({"flood", 1.0}, f3.Callback()), 0u);  // the headroom is kept
  EXPECT_FALSE(f3.decided());
  EXPECT_EQ(ac.Acquire({"short", 1.0}, s1.Callback()), 0u);  // ... for a newcomer
  EXPECT_EQ(s1.code(), absl::StatusCode::kOk);
  EXPECT_EQ(ac.running(), 3);
  EXPECT_EQ(ac.running("flood"), 2);
  ac.Release("short");  // the flood alone again: it may use 2 of 3
  EXPECT_FALSE(f3.decided());
  ac.Release("flood");
  EXPECT_EQ(f3.code(), absl::StatusCode::kOk);
  ac.Release("flood");
  ac.Release("flood");
  EXPECT_EQ(ac.running(), 0);
}

}  // namespace
}  // namespace tessera::router
