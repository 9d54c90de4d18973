// WorkerPool and a worker that reports its replica stalled (LoadReport
// .stalled: a step ran far past its recent ones, a rank may be hung): it
// leaves the rotation at its next poll, although its GetLoad still answers
// and the failed-poll threshold is far away; placement goes to the other
// worker; when the report clears, its next good poll re-admits it.
#include <memory>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/worker_pool.h"
#include "tests/router/fake_worker.h"

namespace tessera::router {
namespace {

using testing::FakeWorker;
using testing::FakeWorkerOptions;
using ::testing::HasSubstr;

// Always the first candidate: placement then shows who is in rotation.
class FirstPolicy : public PlacementPolicy {
 public:
  absl::string_view name() const override { return "first"; }
  bool wants_prefix_match() const override { return false; }
  size_t Choose(const PlacementRequest& /*request*/,
                std::span<const Candidate> /*candidates*/) override {
    return 0;
  }
};

v1::WorkerInfo::State StateOf(const WorkerPool& pool, const std::string& id) {
  std::optional<v1::WorkerInfo> w = pool.Get(id);
  return w.has_value() ? w->state() : v1::WorkerInfo::STATE_UNSPECIFIED;
}

// Polls `pred` until it holds or `timeout` passes.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return pred();
}

TEST(WorkerPoolStallTest, StalledReportEjectsAtTheNextPollAndClearsOnRecovery) {
  FakeWorker stalled(FakeWorkerOptions{.worker_id = "stalled"});
  FakeWorker other(FakeWorkerOptions{.worker_id = "other"});
  WorkerPoolOptions o;
  o.health_interval = absl::Milliseconds(100);
  o.health_timeout = absl::Milliseconds(1000);
  o.unhealthy_threshold = 1000;  // failed polls would take 100 s: ejection must be at once
  o.healthy_threshold = 1;
  WorkerPool pool(o, std::make_unique<FirstPolicy>());
  absl::StatusOr<v1::WorkerInfo> a = pool.Add(stalled.address(), v1::WorkerInfo::SOURCE_STATIC);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(pool.WaitEligible(a->id(), absl::Seconds(10)));
  absl::StatusOr<v1::WorkerInfo> b = pool.Add(other.address(), v1::WorkerInfo::SOURCE_STATIC);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(pool.WaitEligible(b->id(), absl::Seconds(10)));

  v1::LoadReport report;
  report.set_stalled(true);
  report.set_stall_seconds(2.5);
  const absl::Time reported = absl::Now();
  stalled.SetLoad(report);
  ASSERT_TRUE(Eventually([&] { return StateOf(pool, a->id()) == v1::WorkerInfo::STATE_UNHEALTHY; },
                         absl::Seconds(10)));
  // One poll interval plus scheduling slack: not the failed-poll threshold.
  EXPECT_LT(absl::Now() - reported, absl::Seconds(2));
  const std::optional<v1::WorkerInfo> info = pool.Get(a->id());
  ASSERT_TRUE(info.has_value());
  EXPECT_THAT(info->last_error(), HasSubstr("stalled"));
  EXPECT_THAT(info->last_error(), HasSubstr("2.5s"));
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<Lease> lease = pool.Place(PlacementRequest{}, {});
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(lease->worker_id(), b->id()) << "placed on the stalled worker";
  }

  stalled.SetLoad(v1::LoadReport{});  // the step completed after all
  ASSERT_TRUE(pool.WaitEligible(a->id(), absl::Seconds(10)))
      << "not re-admitted after the stall cleared";
  EXPECT_EQ(StateOf(pool, a->id()), v1::WorkerInfo::STATE_HEALTHY);
}

}  // namespace
}  // namespace tessera::router
