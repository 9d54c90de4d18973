// WorkerPool health and placement against in-process fake workers: ejection
// and re-admission, drain, circuit breakers, block-size / model refusal,
// placement with exclusions and load, status sums.
#include "tests/router/worker_pool_test_util.h"

namespace tessera::router::pool_test {
namespace {

TEST_F(WorkerPoolTest, FailedPollsEjectAndGoodPollsReadmit) {
  FakeWorker& a = Fake("alpha");
  MakePool();
  AddEligible(a);
  ASSERT_TRUE(Place().ok());

  a.SetGetLoadStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "sick"));
  ASSERT_TRUE(Eventually([&] { return StateOf("alpha") == v1::WorkerInfo::STATE_UNHEALTHY; }));
  std::optional<v1::WorkerInfo> w = pool_->Get("alpha");
  EXPECT_THAT(w->last_error(), HasSubstr("sick"));
  EXPECT_GE(w->consecutive_failures(), 2);
  absl::StatusOr<Lease> none = Place();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("1 known: alpha unhealthy"));
  EXPECT_FALSE(pool_->WaitEligible("alpha", absl::Milliseconds(50)));

  a.SetGetLoadStatus(grpc::Status::OK);
  EXPECT_TRUE(pool_->WaitEligible("alpha", absl::Seconds(5)));
  EXPECT_EQ(StateOf("alpha"), v1::WorkerInfo::STATE_HEALTHY);
  EXPECT_TRUE(Place().ok());
}

TEST_F(WorkerPoolTest, AdminDrainExcludesFromPlacementUntilUndrained) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  MakePool();
  AddEligible(a);
  AddEligible(b);
  absl::StatusOr<v1::WorkerInfo> d = pool_->SetDraining("a", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::WorkerInfo::STATE_DRAINING);
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<Lease> l = Place();
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(l->worker_id(), "b");
  }
  absl::StatusOr<Lease> none = Place({"b"});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("a draining"));
  EXPECT_THAT(none.status().message(), HasSubstr("b already tried"));

  d = pool_->SetDraining("a", false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::WorkerInfo::STATE_HEALTHY);
  absl::StatusOr<Lease> l = Place({"b"});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->worker_id(), "a");
}

TEST_F(WorkerPoolTest, WorkerReportingDrainingIsExcluded) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  MakePool();
  AddEligible(a);
  AddEligible(b);
  v1::LoadReport draining;
  draining.set_draining(true);
  a.SetLoad(draining);
  ASSERT_TRUE(Eventually([&] { return StateOf("a") == v1::WorkerInfo::STATE_DRAINING; }));
  EXPECT_EQ(Place({"b"}).status().code(), absl::StatusCode::kUnavailable);
  a.SetLoad(v1::LoadReport());
  EXPECT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  EXPECT_TRUE(Place({"b"}).ok());
}

TEST_F(WorkerPoolTest, CircuitBreakerOpensThenProbesHalfOpen) {
  FakeWorker& a = Fake("a");
  MakePool();
  AddEligible(a);
  for (int i = 0; i < 5; ++i) {  // rejected / cancelled are neutral
    absl::StatusOr<Lease> l = Place();
    ASSERT_TRUE(l.ok());
    pool_->RecordOutcome(*l, i % 2 == 0 ? Outcome::kRejected : Outcome::kCancelled);
  }
  {
    absl::StatusOr<Lease> l = Place();
    ASSERT_TRUE(l.ok());
    pool_->RecordOutcome(*l, Outcome::kWorkerError, "boom 1");
  }
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_HEALTHY);
  EXPECT_EQ(pool_->Get("a")->consecutive_failures(), 1);
  {
    absl::StatusOr<Lease> l = Place();
    ASSERT_TRUE(l.ok());
    pool_->RecordOutcome(*l, Outcome::kWorkerError, "boom 2");
  }
  std::optional<v1::WorkerInfo> w = pool_->Get("a");
  EXPECT_EQ(w->state(), v1::WorkerInfo::STATE_UNHEALTHY);
  EXPECT_EQ(w->last_error(), "boom 2");
  EXPECT_EQ(w->consecutive_failures(), 2);
  absl::StatusOr<Lease> none = Place();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("a circuit open"));

  // After open_duration one probe goes through; nothing else meanwhile.
  ASSERT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  absl::StatusOr<Lease> probe = Place();
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(Place().status().code(), absl::StatusCode::kUnavailable);
  // A cancelled probe says nothing about the worker: the next request probes.
  pool_->RecordOutcome(*probe, Outcome::kCancelled);
  probe = absl::UnavailableError("released");
  absl::StatusOr<Lease> probe2 = Place();
  ASSERT_TRUE(probe2.ok()) << probe2.status();
  EXPECT_EQ(Place().status().code(), absl::StatusCode::kUnavailable);
  // A probe dropped without an outcome gives the probe back too.
  probe2 = absl::UnavailableError("released");
  absl::StatusOr<Lease> probe3 = Place();
  ASSERT_TRUE(probe3.ok()) << probe3.status();
  pool_->RecordOutcome(*probe3, Outcome::kSuccess);  // closes the breaker
  absl::StatusOr<Lease> x = Place();
  absl::StatusOr<Lease> y = Place();
  EXPECT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_HEALTHY);
  EXPECT_EQ(pool_->Get("a")->consecutive_failures(), 0);
}

TEST_F(WorkerPoolTest, WorkersWithAnotherBlockSizeOrModelAreRefused) {
  FakeWorker& a = Fake("a");
  FakeWorker& big = Fake("big", /*block_size=*/32);
  FakeWorker& other = Fake("other", 16, "another-model");
  MakePool();
  AddEligible(a);
  ASSERT_TRUE(pool_->Add(big.address(), Source::SOURCE_ADMIN).ok());
  ASSERT_TRUE(pool_->Add(other.address(), Source::SOURCE_ADMIN).ok());
  EXPECT_TRUE(Eventually([&] {
    return pool_->Get("big")->last_error().find("block_size: the worker reports 32") !=
           std::string::npos;
  }));
  EXPECT_TRUE(Eventually([&] {
    return pool_->Get("other")->last_error().find("model id: the worker serves 'another-model'") !=
           std::string::npos;
  }));
  EXPECT_EQ(StateOf("big"), v1::WorkerInfo::STATE_UNHEALTHY);
  EXPECT_EQ(StateOf("other"), v1::WorkerInfo::STATE_UNHEALTHY);
  EXPECT_EQ(pool_->Get("big")->block_size(), 32);
  EXPECT_FALSE(pool_->WaitEligible("big", absl::Milliseconds(100)));
  EXPECT_EQ(Place({"a"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool_->block_size(), 16);
  EXPECT_EQ(pool_->model_info()->id(), "fake");
  EXPECT_EQ(big.watch_calls(), 0);  // never watched
}

TEST_F(WorkerPoolTest, PlaceHonoursExcludeAndSeesLoad) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  MakePool();
  AddEligible(a);
  AddEligible(b);
  absl::StatusOr<Lease> l = Place({"a"});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->worker_id(), "b");
  const WorkerSlot slot_b = l->slot();
  l = absl::UnavailableError("released");
  absl::StatusOr<Lease> none = Place({"a", "b"});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("2 known"));

  // Load = max(this router's in-flight, reported running + waiting).
  v1::LoadReport report;
  report.set_running(3);
  report.set_waiting(2);
  b.SetLoad(report);
  ASSERT_TRUE(Eventually([&] { return pool_->Get("b")->load().running() == 3; }));
  auto load_of_b = [&] {
    for (const Candidate& c : policy_->last()) {
      if (c.slot == slot_b) return c.load;
    }
    return int64_t{-1};
  };
  ASSERT_TRUE(Place().ok());
  EXPECT_EQ(load_of_b(), 5);
  std::vector<Lease> held;
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<Lease> h = Place({"a"});
    ASSERT_TRUE(h.ok());
    held.push_back(std::move(*h));
  }
  EXPECT_EQ(pool_->Get("b")->in_flight(), 6);
  ASSERT_TRUE(Place().ok());
  EXPECT_EQ(load_of_b(), 6);
  held.clear();
  EXPECT_EQ(pool_->Get("b")->in_flight(), 0);
  EXPECT_EQ(pool_->Get("b")->requests_routed(), 7);  // 1 + 6 (the unexcluded ones went to a)
}

TEST_F(WorkerPoolTest, StatusSumsTheWorkers) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  MakePool();
  AddEligible(a);
  AddEligible(b);
  v1::LoadReport ra;
  ra.set_running(2);
  ra.set_waiting(1);
  ra.set_prefix_cache_queried_tokens(100);
  ra.set_prefix_cache_hit_tokens(40);
  a.SetLoad(ra);
  v1::LoadReport rb;
  rb.set_running(1);
  rb.set_prefix_cache_queried_tokens(100);
  rb.set_prefix_cache_hit_tokens(10);
  b.SetLoad(rb);
  ASSERT_TRUE(Eventually([&] { return pool_->Status().prefix_cache_hit_tokens() == 50; }));
  ASSERT_TRUE(pool_->SetDraining("a", true).ok());
  const v1::ClusterStatus st = pool_->Status();
  EXPECT_EQ(st.workers(), 2);
  EXPECT_EQ(st.healthy(), 1);
  EXPECT_EQ(st.draining(), 1);
  EXPECT_EQ(st.unhealthy(), 0);
  EXPECT_EQ(st.running(), 3);
  EXPECT_EQ(st.waiting(), 1);
  EXPECT_EQ(st.prefix_cache_queried_tokens(), 200);
  EXPECT_DOUBLE_EQ(st.prefix_cache_hit_rate(), 0.25);
  EXPECT_EQ(st.policy(), "test");
  EXPECT_EQ(st.requests_total(), 0);  // the service layer's counters
}

}  // namespace
}  // namespace tessera::router::pool_test
