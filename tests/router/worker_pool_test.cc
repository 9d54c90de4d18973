// WorkerPool against in-process fake workers over real gRPC channels, with
// short intervals: ids, duplicates, ejection and re-admission, drain, removal
// with live leases, the KV-event feed (reconnects, sequence gaps), circuit
// breakers, SyncSource, registration TTL, block-size / model refusal,
// placement, status sums, and prompt shutdown with hanging workers.
#include "router/worker_pool.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/fake_worker.h"

namespace tessera::router {
namespace {

using ::testing::ElementsAre;
using testing::FakeWorker;
using testing::FakeWorkerOptions;
using ::testing::HasSubstr;
using Source = v1::WorkerInfo;

// Polls `pred` until it holds or `timeout` passes (never a bare sleep as sync).
bool Eventually(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return pred();
}

// Chooses the candidate with the most matched blocks, then the lowest load,
// then the first; remembers the candidates it was shown.
class TestPolicy : public PlacementPolicy {
 public:
  absl::string_view name() const override { return "test"; }
  bool wants_prefix_match() const override { return true; }
  size_t Choose(const PlacementRequest& /*request*/,
                std::span<const Candidate> candidates) override {
    absl::MutexLock lock(&mu_);
    last_.assign(candidates.begin(), candidates.end());
    size_t best = 0;
    for (size_t i = 1; i < candidates.size(); ++i) {
      const Candidate& c = candidates[i];
      const Candidate& b = candidates[best];
      if (c.matched_blocks > b.matched_blocks ||
          (c.matched_blocks == b.matched_blocks && c.load < b.load)) {
        best = i;
      }
    }
    return best;
  }
  std::vector<Candidate> last() const {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Candidate> last_;
};

v1::KvEventBatch Batch(v1::KvEvent::Kind kind, std::initializer_list<uint64_t> hashes) {
  v1::KvEventBatch b;
  v1::KvEvent* e = b.add_events();
  e->set_kind(kind);
  for (uint64_t h : hashes) e->add_block_hashes(h);
  return b;
}

// Generates on a lease's stub; the number of messages, or -1 on error.
int GenerateOn(const Lease& lease) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  v1::GenerateRequest req;
  req.mutable_token_ids()->add_ids(1);
  auto reader = lease.stub()->Generate(&ctx, req);
  v1::GenerateResponse m;
  int n = 0;
  while (reader->Read(&m)) ++n;
  return reader->Finish().ok() ? n : -1;
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  static WorkerPoolOptions FastOptions() {
    WorkerPoolOptions o;
    o.health_interval = absl::Milliseconds(20);
    o.health_timeout = absl::Milliseconds(500);
    o.unhealthy_threshold = 2;
    o.healthy_threshold = 1;
    o.breaker.failure_threshold = 2;
    o.breaker.open_duration = absl::Milliseconds(300);
    o.registration_ttl = absl::Seconds(10);
    o.watch_backoff_initial = absl::Milliseconds(20);
    o.watch_backoff_max = absl::Milliseconds(200);
    return o;
  }
  void MakePool(WorkerPoolOptions o = FastOptions()) {
    auto policy = std::make_unique<TestPolicy>();
    policy_ = policy.get();
    pool_ = std::make_unique<WorkerPool>(std::move(o), std::move(policy));
  }
  FakeWorker& Fake(const std::string& id, int block_size = 16, const std::string& model = "fake") {
    fakes_.push_back(std::make_unique<FakeWorker>(
        FakeWorkerOptions{.worker_id = id, .block_size = block_size, .model = model}));
    return *fakes_.back();
  }
  // Adds `fake` (its reported id) and waits until it is in rotation.
  std::string AddEligible(FakeWorker& fake, v1::WorkerInfo::Source source = Source::SOURCE_STATIC) {
    absl::StatusOr<v1::WorkerInfo> info = pool_->Add(fake.address(), source);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return "";
    EXPECT_TRUE(pool_->WaitEligible(info->id(), absl::Seconds(5))) << info->id();
    return info->id();
  }
  absl::StatusOr<Lease> Place(std::vector<std::string> exclude = {},
                              std::vector<uint64_t> hashes = {}) {
    PlacementRequest request;
    request.block_hashes = hashes;
    return pool_->Place(request, exclude);
  }
  v1::WorkerInfo::State StateOf(const std::string& id) {
    std::optional<v1::WorkerInfo> w = pool_->Get(id);
    return w.has_value() ? w->state() : v1::WorkerInfo::STATE_UNSPECIFIED;
  }

  std::vector<std::unique_ptr<FakeWorker>> fakes_;  // outlive the pool
  TestPolicy* policy_ = nullptr;
  std::unique_ptr<WorkerPool> pool_;
};

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
  // The same id registering from a new address (restarted elsewhere) moves.
  FakeWorker& r2 = Fake("rw");
  absl::StatusOr<v1::WorkerInfo> moved = pool_->Add(r2.address(), Source::SOURCE_REGISTERED, "rw");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(pool_->Get("rw")->address(), r2.address());
  EXPECT_EQ(pool_->List().size(), 2u);
}

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

TEST_F(WorkerPoolTest, KvEventsFeedTheIndexAndResyncAfterARestart) {
  FakeWorker& a = Fake("a");
  FakeWorker& b = Fake("b");
  MakePool();
  AddEligible(a);
  AddEligible(b);
  ASSERT_TRUE(Eventually([&] { return a.kv_watchers() == 1 && b.kv_watchers() == 1; }));
  WorkerSlot slot_a, slot_b;
  {
    absl::StatusOr<Lease> la = Place({"b"});
    absl::StatusOr<Lease> lb = Place({"a"});
    ASSERT_TRUE(la.ok() && lb.ok());
    slot_a = la->slot();
    slot_b = lb->slot();
  }
  ASSERT_NE(slot_a, slot_b);
  PrefixIndex& index = pool_->index();

  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {11, 12, 13}));
  ASSERT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 3; }));
  const std::vector<uint64_t> prompt = {11, 12, 99};
  const std::vector<WorkerSlot> slots = {slot_a, slot_b};
  std::vector<int> matched(2);
  index.MatchPrefix(prompt, slots, std::span<int>(matched));
  EXPECT_THAT(matched, ElementsAre(2, 0));

  a.PushKvEvents(Batch(v1::KvEvent::KIND_EVICTED, {12}));
  ASSERT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 2; }));

  // Placement sees the matched blocks and picks the holder.
  absl::StatusOr<Lease> l = Place({}, {11, 13});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->worker_id(), "a");
  const std::vector<Candidate> seen = policy_->last();
  ASSERT_EQ(seen.size(), 2u);
  for (const Candidate& c : seen) EXPECT_EQ(c.matched_blocks, c.slot == slot_a ? 2 : 0);
  l = absl::UnavailableError("released");

  // The worker dies: its entries are dropped at once, and it is ejected.
  a.Stop();
  EXPECT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 0; }));
  EXPECT_TRUE(Eventually([&] { return StateOf("a") == v1::WorkerInfo::STATE_UNHEALTHY; }));
  // It comes back (same port, same cache): re-admitted, re-watched, resynced.
  ASSERT_TRUE(a.Restart().ok());
  EXPECT_TRUE(pool_->WaitEligible("a", absl::Seconds(10)));
  EXPECT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 2; }));
  EXPECT_GE(a.watch_calls(), 2);
  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {12}));
  EXPECT_TRUE(Eventually([&] { return index.BlockCount(slot_a) == 3; }));
  EXPECT_EQ(index.BlockCount(slot_b), 0);
}

TEST_F(WorkerPoolTest, SequenceGapDropsEntriesAndResubscribes) {
  FakeWorker& a = Fake("a");
  MakePool();
  AddEligible(a);
  ASSERT_TRUE(Eventually([&] { return a.kv_watchers() == 1; }));
  absl::StatusOr<Lease> l = Place();
  ASSERT_TRUE(l.ok());
  const WorkerSlot slot = l->slot();
  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {1}));
  ASSERT_TRUE(Eventually([&] { return pool_->index().BlockCount(slot) == 1; }));
  const int64_t watches = a.watch_calls();

  a.SkipKvSequenceNumbers(1);  // the next batch arrives as 3 where 2 is due
  a.PushKvEvents(Batch(v1::KvEvent::KIND_STORED, {2}));
  EXPECT_TRUE(Eventually([&] { return a.watch_calls() > watches; }));  // resubscribed
  // The fresh snapshot holds both blocks.
  EXPECT_TRUE(Eventually([&] { return pool_->index().BlockCount(slot) == 2; }));
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_HEALTHY);
}

TEST_F(WorkerPoolTest, WatchCanBeTurnedOff) {
  FakeWorker& a = Fake("a");
  WorkerPoolOptions o = FastOptions();
  o.watch_kv_events = false;
  MakePool(o);
  AddEligible(a);
  const int64_t polls = a.get_load_calls();
  EXPECT_TRUE(Eventually([&] { return a.get_load_calls() >= polls + 3; }));
  EXPECT_EQ(a.watch_calls(), 0);
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
  o.registration_ttl = absl::Milliseconds(300);
  MakePool(o);
  ASSERT_TRUE(pool_->Add(r.address(), Source::SOURCE_REGISTERED, "r").ok());
  AddEligible(s);
  // Heartbeats keep it for well past the TTL (paced: this is the behaviour
  // under test, not synchronisation).
  const absl::Time until = absl::Now() + absl::Milliseconds(900);
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

TEST_F(WorkerPoolTest, WorkersWithAnotherBlockSizeOrModelAreRefused) {
  FakeWorker& a = Fake("a");
  FakeWorker& big = Fake("big", /*block_size=*/32);
  FakeWorker& other = Fake("other", 16, "another-model");
  MakePool();
  AddEligible(a);
  ASSERT_TRUE(pool_->Add(big.address(), Source::SOURCE_ADMIN).ok());
  ASSERT_TRUE(pool_->Add(other.address(), Source::SOURCE_ADMIN).ok());
  EXPECT_TRUE(Eventually(
      [&] { return pool_->Get("big")->last_error().find("block size 32") != std::string::npos; }));
  EXPECT_TRUE(Eventually([&] {
    return pool_->Get("other")->last_error().find("model 'another-model'") != std::string::npos;
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
}  // namespace tessera::router
