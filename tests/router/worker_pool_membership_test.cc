// WorkerPool membership against in-process fake workers: ids, duplicates
// and re-registration, bad addresses, SyncSource, the registration TTL,
// removal with live leases, and prompt removal / shutdown with hanging
// workers.
#include "tests/router/worker_pool_test_util.h"

namespace tessera::router::pool_test {
namespace {

TEST_F(WorkerPoolTest, IdsComeFromTheReportTheCallerOrTheAddress) {
  FakeWorker& a = Fake("alpha");
  FakeWorker& b = Fake("");  // reports no id
  FakeWorker& c = Fake("reported-c");
  MakePool();
  absl::StatusOr<v1::WorkerInfo> ia = pool_->Add(a.address(), Source::SOURCE_STATIC);
  ASSERT_TRUE(ia.ok()) << ia.status();
  EXPECT_EQ(ia->id(), "alpha");
  EXPECT_EQ(ia->address(), a.address());
  EXPECT_EQ(ia->source(), Source::SOURCE_STATIC);
  EXPECT_EQ(ia->state(), v1::WorkerInfo::STATE_UNHEALTHY);  // until its first good poll
  absl::StatusOr<v1::WorkerInfo> ib = pool_->Add(b.address(), Source::SOURCE_ADMIN);
  ASSERT_TRUE(ib.ok()) << ib.status();
  EXPECT_EQ(ib->id(), b.address());
  absl::StatusOr<v1::WorkerInfo> ic = pool_->Add(c.address(), Source::SOURCE_REGISTERED, "given");
  ASSERT_TRUE(ic.ok()) << ic.status();
  EXPECT_EQ(ic->id(), "given");

  std::vector<std::string> ids;
  for (const v1::WorkerInfo& w : pool_->List()) ids.push_back(w.id());
  std::vector<std::string> want = {"alpha", b.address(), "given"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);

  for (const std::string& id : want) EXPECT_TRUE(pool_->WaitEligible(id, absl::Seconds(5))) << id;
  std::optional<v1::WorkerInfo> w = pool_->Get("alpha");
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->state(), v1::WorkerInfo::STATE_HEALTHY);
  EXPECT_EQ(w->block_size(), 16);
  EXPECT_EQ(w->load().worker_id(), "alpha");
  EXPECT_EQ(w->load().model(), "fake");
  EXPECT_TRUE(w->last_error().empty());
  EXPECT_EQ(pool_->block_size(), 16);
  ASSERT_TRUE(pool_->model_info().has_value());
  EXPECT_EQ(pool_->model_info()->id(), "fake");
  EXPECT_EQ(pool_->model_info()->max_model_len(), 2048);
  EXPECT_EQ(pool_->model_info()->vocab_size(), 512);

  // Once polled, a worker is also found by the id it reports ("reported-c" is
  // "given" in the pool): drain, get and remove accept either name.
  std::optional<v1::WorkerInfo> by_reported = pool_->Get("reported-c");
  ASSERT_TRUE(by_reported.has_value());
  EXPECT_EQ(by_reported->id(), "given");
  absl::StatusOr<v1::WorkerInfo> drained = pool_->SetDraining("reported-c", true);
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_EQ(drained->state(), v1::WorkerInfo::STATE_DRAINING);
  EXPECT_TRUE(pool_->Remove("reported-c").ok());
  EXPECT_FALSE(pool_->Get("given").has_value());
  EXPECT_EQ(pool_->Remove("reported-c").code(), absl::StatusCode::kNotFound);
}

TEST_F(WorkerPoolTest, RejectsBadAddressesAndUnknownIds) {
  MakePool();
  for (const char* bad : {"nohost", "host:0", "host:70000", ":80", "host:port", "a:b:1", "[::1]"}) {
    EXPECT_EQ(pool_->Add(bad, Source::SOURCE_ADMIN).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_FALSE(pool_->Get("nope").has_value());
  EXPECT_EQ(pool_->Remove("nope").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->SetDraining("nope", true).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(pool_->WaitEligible("nope", absl::ZeroDuration()));
  EXPECT_FALSE(pool_->Heartbeat("nope"));
  absl::StatusOr<Lease> none = Place();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("no eligible worker (0 known"));
}

TEST_F(WorkerPoolTest, DuplicateAddressOrIdIsRefusedButRegistrationIsIdempotent) {
  FakeWorker& a = Fake("alpha");
  FakeWorker& b = Fake("beta");
  MakePool();
  ASSERT_TRUE(pool_->Add(a.address(), Source::SOURCE_STATIC).ok());
  EXPECT_EQ(pool_->Add(a.address(), Source::SOURCE_STATIC).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pool_->Add(a.address(), Source::SOURCE_ADMIN, "other").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pool_->Add(b.address(), Source::SOURCE_ADMIN, "alpha").status().code(),
            absl::StatusCode::kAlreadyExists);
  // A second worker reporting a known id is refused too.
  FakeWorker& twin = Fake("alpha");
  EXPECT_EQ(pool_->Add(twin.address(), Source::SOURCE_ADMIN).status().code(),
            absl::StatusCode::kAlreadyExists);

  // A registered worker that registers again keeps its entry.
  FakeWorker& r = Fake("rw");
  ASSERT_TRUE(pool_->Add(r.address(), Source::SOURCE_REGISTERED, "rw").ok());
  absl::StatusOr<v1::WorkerInfo> again = pool_->Add(r.address(), Source::SOURCE_REGISTERED, "rw");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), "rw");
  EXPECT_EQ(pool_->List().size(), 2u);
  // Registering at an address already known from another source returns that entry.
  absl::StatusOr<v1::WorkerInfo> known = pool_->Add(a.address(), Source::SOURCE_REGISTERED, "x");
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_EQ(known->id(), "alpha");
  EXPECT_EQ(known->source(), Source::SOURCE_STATIC);
  // The same id registering from a new address without the registered
  // incarnation is refused while the first has not failed its health checks
  // (worker_pool_identity_test.cc has the take-over rules).
  FakeWorker& r2 = Fake("rw");
  absl::StatusOr<v1::WorkerInfo> moved = pool_->Add(r2.address(), Source::SOURCE_REGISTERED, "rw");
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kAlreadyExists) << moved.status();
  EXPECT_EQ(pool_->Get("rw")->address(), r.address());
  EXPECT_EQ(pool_->List().size(), 2u);
}

TEST_F(WorkerPoolTest, SyncSourceAddsDrainsAndRemoves) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  FakeWorker& s = Fake("s");
  MakePool();
  AddEligible(s);  // STATIC: never touched by a DNS sync
  std::vector<std::string> both = {a.address(), b.address()};
  pool_->SyncSource(Source::SOURCE_DNS, both);
  ASSERT_EQ(pool_->List().size(), 3u);
  EXPECT_EQ(pool_->Get("a")->source(), Source::SOURCE_DNS);
  ASSERT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  ASSERT_TRUE(pool_->WaitEligible("b", absl::Seconds(5)));
  pool_->SyncSource(Source::SOURCE_DNS, both);  // no change
  EXPECT_EQ(pool_->List().size(), 3u);

  std::optional<Lease> on_a;
  {
    absl::StatusOr<Lease> l = Place({"b", "s"});
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(l->worker_id(), "a");
    on_a.emplace(std::move(*l));
  }
  std::vector<std::string> only_b = {b.address()};
  pool_->SyncSource(Source::SOURCE_DNS, only_b);
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_DRAINING);
  EXPECT_EQ(Place({"b", "s"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(pool_->Get("a").has_value());  // still serving its request
  // Listed again before it left: back in rotation.
  pool_->SyncSource(Source::SOURCE_DNS, both);
  EXPECT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  pool_->SyncSource(Source::SOURCE_DNS, only_b);
  on_a.reset();  // its last request ends: removed
  EXPECT_TRUE(Eventually([&] { return !pool_->Get("a").has_value(); }));

  // With a request that does not end, the drain grace decides.
  absl::StatusOr<Lease> on_b = Place({"s"});
  ASSERT_TRUE(on_b.ok());
  pool_->SyncSource(Source::SOURCE_DNS, {}, absl::Milliseconds(100));
  EXPECT_EQ(StateOf("b"), v1::WorkerInfo::STATE_DRAINING);
  EXPECT_TRUE(Eventually([&] { return !pool_->Get("b").has_value(); }));
  EXPECT_EQ(GenerateOn(*on_b), 5);  // the lease still works after removal
  EXPECT_TRUE(pool_->Get("s").has_value());
  EXPECT_EQ(pool_->List().size(), 1u);
}

TEST_F(WorkerPoolTest, RegisteredWorkersExpireWithoutHeartbeats) {
  FakeWorker& r = Fake("r");
  FakeWorker& s = Fake("s");
  WorkerPoolOptions o = FastOptions();
  // 1 s: a heartbeat paced every 50 ms misses it only if this thread stalls
  // for 950 ms (300 ms failed once in 18 runs on a 2-core VM at load 20).
  o.registration_ttl = absl::Seconds(1);
  MakePool(o);
  ASSERT_TRUE(pool_->Add(r.address(), Source::SOURCE_REGISTERED, "r").ok());
  AddEligible(s);
  // Heartbeats keep it for well past the TTL (paced: this is the behaviour
  // under test, not synchronisation).
  const absl::Time until = absl::Now() + absl::Milliseconds(2500);
  while (absl::Now() < until) {
    ASSERT_TRUE(pool_->Heartbeat("r"));
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(pool_->Get("r").has_value());
  // Silence: removed after the TTL; the static worker stays.
  EXPECT_TRUE(Eventually([&] { return !pool_->Get("r").has_value(); }));
  EXPECT_FALSE(pool_->Heartbeat("r"));
  EXPECT_TRUE(pool_->Get("s").has_value());
}

TEST_F(WorkerPoolTest, RemoveKeepsALiveLeaseWorking) {
  FakeWorker& a = Fake("alpha");
  MakePool();
  AddEligible(a);
  ASSERT_TRUE(Eventually([&] { return a.kv_watchers() == 1; }));
  absl::StatusOr<Lease> lease = Place();
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->worker_id(), "alpha");
  EXPECT_EQ(lease->address(), a.address());
  EXPECT_EQ(pool_->Get("alpha")->in_flight(), 1);
  EXPECT_EQ(pool_->Get("alpha")->requests_routed(), 1);

  ASSERT_TRUE(pool_->Remove("alpha").ok());
  EXPECT_FALSE(pool_->Get("alpha").has_value());
  EXPECT_TRUE(pool_->List().empty());
  EXPECT_EQ(Place().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GenerateOn(*lease), 5);  // 4 tokens + the final message
  EXPECT_EQ(pool_->Remove("alpha").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Eventually([&] { return a.kv_watchers() == 0; }));  // its watch is closed
}

TEST_F(WorkerPoolTest, RemoveAndDestructorArePromptWithHangingWorkers) {
  WorkerPoolOptions o = FastOptions();
  o.health_timeout = absl::Seconds(60);
  std::vector<FakeWorker*> hung;
  for (const char* id : {"h1", "h2", "h3"}) {
    FakeWorker& f = Fake(id);
    f.SetGetLoadHang(true);
    hung.push_back(&f);
  }
  FakeWorker& ok = Fake("ok");
  ok.SetGenerateScript({.tokens = 1});
  MakePool(o);
  AddEligible(ok);
  for (FakeWorker* f : hung) {
    ASSERT_TRUE(pool_->Add(f->address(), Source::SOURCE_ADMIN, f->options().worker_id).ok());
  }
  for (FakeWorker* f : hung) {
    ASSERT_TRUE(Eventually([&] { return f->get_load_calls() >= 1; }));  // a poll hangs there
  }
  absl::StatusOr<Lease> lease = Place();
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->worker_id(), "ok");

  absl::Time start = absl::Now();
  ASSERT_TRUE(pool_->Remove("h1").ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  start = absl::Now();
  pool_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // A lease may outlive the pool.
  EXPECT_EQ(GenerateOn(*lease), 2);
}

}  // namespace
}  // namespace tessera::router::pool_test
