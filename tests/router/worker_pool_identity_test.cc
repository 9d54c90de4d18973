// WorkerPool registrations against in-process fake workers: an id is bound
// to (address, incarnation); a take-over from another address is refused
// while the registered worker passes its health checks (and its heartbeats
// keep it), accepted with the same incarnation or once it fails them; stale
// incarnations' heartbeats do not count; registrations are limited in
// number and rate.
#include "tests/router/worker_pool_test_util.h"

namespace tessera::router::pool_test {
namespace {

constexpr char kRealIncarnation[] = "8f14e45fceea167a5a36dedd4bea2543";
constexpr char kOtherIncarnation[] = "c9f0f895fb98ab9159f51fd0297e236d";

TEST_F(WorkerPoolTest, IdTakeoverFromAnotherAddressIsRefusedAndTheRealWorkerKeepsServing) {
  FakeWorker& real = Fake("w1");
  FakeWorker& rogue = Fake("w1");
  MakePool();
  ASSERT_TRUE(pool_->Register(real.address(), "w1", kRealIncarnation).ok());
  ASSERT_TRUE(pool_->WaitEligible("w1", absl::Seconds(5)));

  // Another process claims the id from its own address: refused, with or
  // without an incarnation of its own.
  for (const char* incarnation : {kOtherIncarnation, ""}) {
    absl::StatusOr<v1::WorkerInfo> taken = pool_->Register(rogue.address(), "w1", incarnation);
    EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists) << taken.status();
    EXPECT_THAT(taken.status().message(), HasSubstr("passes its health checks"));
  }
  std::optional<v1::WorkerInfo> w = pool_->Get("w1");
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->address(), real.address());
  EXPECT_EQ(pool_->List().size(), 1u);

  // The real worker's heartbeats keep it; the rogue's do not count.
  EXPECT_TRUE(pool_->Heartbeat("w1", kRealIncarnation));
  EXPECT_FALSE(pool_->Heartbeat("w1", kOtherIncarnation));
  EXPECT_FALSE(pool_->Heartbeat("w1", ""));
  // Registering again from its own address is idempotent.
  absl::StatusOr<v1::WorkerInfo> again = pool_->Register(real.address(), "w1", kRealIncarnation);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->address(), real.address());

  // Requests still go to the real worker, never to the rogue.
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Lease> lease = Place();
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(lease->address(), real.address());
    EXPECT_EQ(GenerateOn(*lease), 5);
  }
  EXPECT_EQ(rogue.generate_calls(), 0);
  EXPECT_EQ(rogue.get_load_calls(), 0);  // never even polled
}

TEST_F(WorkerPoolTest, SameIncarnationMovesAndAFailedWorkerCanBeReplaced) {
  FakeWorker& first = Fake("w1");
  FakeWorker& second = Fake("w1");
  FakeWorker& third = Fake("w1");
  MakePool();
  ASSERT_TRUE(pool_->Register(first.address(), "w1", kRealIncarnation).ok());
  ASSERT_TRUE(pool_->WaitEligible("w1", absl::Seconds(5)));
  // The same process (same incarnation) at a new address: the entry moves.
  absl::StatusOr<v1::WorkerInfo> moved = pool_->Register(second.address(), "w1", kRealIncarnation);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(pool_->Get("w1")->address(), second.address());
  ASSERT_TRUE(pool_->WaitEligible("w1", absl::Seconds(5)));

  // A new process elsewhere is refused while `second` serves, and accepted
  // once the router's own polls have ejected it.
  EXPECT_EQ(pool_->Register(third.address(), "w1", kOtherIncarnation).status().code(),
            absl::StatusCode::kAlreadyExists);
  second.Stop();
  ASSERT_TRUE(Eventually([&] { return StateOf("w1") == v1::WorkerInfo::STATE_UNHEALTHY; }));
  ASSERT_TRUE(Eventually([&] { return pool_->Get("w1")->consecutive_failures() >= 2; }));
  absl::StatusOr<v1::WorkerInfo> replaced =
      pool_->Register(third.address(), "w1", kOtherIncarnation);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(pool_->Get("w1")->address(), third.address());
  ASSERT_TRUE(pool_->WaitEligible("w1", absl::Seconds(5)));
  // The replaced incarnation's heartbeats neither keep nor revive it.
  EXPECT_FALSE(pool_->Heartbeat("w1", kRealIncarnation));
  EXPECT_EQ(pool_->Get("w1")->address(), third.address());
  EXPECT_TRUE(pool_->Heartbeat("w1", kOtherIncarnation));
}

TEST_F(WorkerPoolTest, AWorkerRestartedAtItsAddressRegistersItsNewIncarnation) {
  FakeWorker& w = Fake("w1");
  MakePool();
  ASSERT_TRUE(pool_->Register(w.address(), "w1", kRealIncarnation).ok());
  ASSERT_TRUE(pool_->WaitEligible("w1", absl::Seconds(5)));
  // Its watch stream is up first (destroying the pool while a watch starts
  // tripped a gRPC refcount assertion once, before the pool released its
  // channels only after every callback: worker_pool_kv_test).
  ASSERT_TRUE(Eventually([&] { return w.kv_watchers() == 1; }));
  absl::StatusOr<v1::WorkerInfo> again = pool_->Register(w.address(), "w1", kOtherIncarnation);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(pool_->Heartbeat("w1", kOtherIncarnation));
  EXPECT_FALSE(pool_->Heartbeat("w1", kRealIncarnation));  // the old process's
  EXPECT_EQ(pool_->List().size(), 1u);
  // Bad incarnations are refused, naming the field and the limit.
  absl::StatusOr<v1::WorkerInfo> bad = pool_->Register(w.address(), "w1", std::string(65, 'a'));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("incarnation: must be at most 64 bytes"));
}

TEST_F(WorkerPoolTest, RegistrationsAreCappedInNumber) {
  WorkerPoolOptions o = FastOptions();
  o.max_registered_workers = 2;
  MakePool(o);
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  FakeWorker& c = Fake("c");
  FakeWorker& s = Fake("s");
  ASSERT_TRUE(pool_->Register(a.address(), "a", "1").ok());
  ASSERT_TRUE(pool_->Register(b.address(), "b", "2").ok());
  absl::StatusOr<v1::WorkerInfo> over = pool_->Register(c.address(), "c", "3");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.status().message(),
              HasSubstr("2 registered workers is the limit (2, --max-registered-workers)"));
  EXPECT_FALSE(pool_->Get("c").has_value());
  // Registering again is not a new worker; other sources do not count.
  EXPECT_TRUE(pool_->Register(a.address(), "a", "1").ok());
  EXPECT_TRUE(pool_->Add(s.address(), Source::SOURCE_STATIC).ok());
  // A slot frees up when a registered worker leaves.
  ASSERT_TRUE(pool_->Remove("b").ok());
  EXPECT_TRUE(pool_->Register(c.address(), "c", "3").ok());
  EXPECT_EQ(pool_->List().size(), 3u);
}

TEST_F(WorkerPoolTest, RegistrationsAreRateLimited) {
  WorkerPoolOptions o = FastOptions();
  o.registration_rate = 0.001;  // no refill within the test
  o.registration_burst = 2;
  MakePool(o);
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  FakeWorker& c = Fake("c");
  ASSERT_TRUE(pool_->Register(a.address(), "a", "1").ok());
  ASSERT_TRUE(pool_->Register(b.address(), "b", "2").ok());
  absl::StatusOr<v1::WorkerInfo> over = pool_->Register(c.address(), "c", "3");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.status().message(), HasSubstr("--registration-rate"));
  // Known workers registering again are not new registrations.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(pool_->Register(a.address(), "a", "1").ok());
  // Nor are workers from other sources limited by it.
  EXPECT_TRUE(pool_->Add(c.address(), Source::SOURCE_ADMIN).ok());
}

}  // namespace
}  // namespace tessera::router::pool_test
