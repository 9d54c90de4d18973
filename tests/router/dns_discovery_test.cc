// dns:/// discovery on loopback with a scripted resolver and in-process fake
// workers: the pool gains and loses DNS workers as the resolved set changes
// (a removed worker drains: no new requests, its running request finishes,
// then it leaves), a failing resolution keeps the last set, the refresh
// thread picks changes up on its own and stops promptly; plus the parsing of
// dns:/// targets and the system resolver on address literals.
#include "router/dns_discovery.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/policy.h"
#include "tests/router/fake_worker.h"

namespace tessera::router {
namespace {

using ::testing::ElementsAre;
using testing::FakeWorker;
using testing::FakeWorkerOptions;
using ::testing::HasSubstr;

bool Eventually(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return pred();
}

// ---- ParseDnsTarget / IsDnsTarget -----------------------------------------

TEST(ParseDnsTarget, AcceptsNamesAndAddresses) {
  absl::StatusOr<DnsTarget> t =
      ParseDnsTarget("dns:///tessera-worker-headless.default.svc.cluster.local:50051");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "tessera-worker-headless.default.svc.cluster.local");
  EXPECT_EQ(t->port, 50051);

  t = ParseDnsTarget("dns:///127.0.0.1:1");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 1);

  t = ParseDnsTarget("dns:///[::1]:65535");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, 65535);
}

TEST(ParseDnsTarget, RefusesOtherFormsNamingTheExpectedOne) {
  for (const char* bad : {
           "dns://8.8.8.8/workers:50051",  // a DNS server (authority)
           "dns:workers:50051",            // no //
           "dns://workers:50051",          // no third /
           "dns:///workers",               // no port
           "dns:///workers:",              // empty port
           "dns:///workers:0",             // port out of range
           "dns:///workers:65536",         // port out of range
           "dns:///workers:5x",            // not a number
           "dns:///workers:+80",           // not digits only
           "dns:///:50051",                // no name
           "dns:///::1:50051",             // IPv6 without brackets
           "dns:///[::1]50051",            // no ':' after ']'
           "dns:///a/b:50051",             // a path in the name
           "127.0.0.1:50051",              // not dns: at all
       }) {
    SCOPED_TRACE(bad);
    absl::StatusOr<DnsTarget> t = ParseDnsTarget(bad);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr("dns:///NAME:PORT"));
  }
}

TEST(IsDnsTarget, OnlyTheDnsScheme) {
  EXPECT_TRUE(IsDnsTarget("dns:///workers:50051"));
  EXPECT_TRUE(IsDnsTarget("dns://8.8.8.8/workers:50051"));  // then refused by ParseDnsTarget
  EXPECT_FALSE(IsDnsTarget("workers:50051"));
  EXPECT_FALSE(IsDnsTarget("127.0.0.1:50051,127.0.0.1:50052"));
  EXPECT_FALSE(IsDnsTarget(""));
}

TEST(SystemResolver, ResolvesAddressLiteralsWithoutDns) {
  const Resolver resolve = SystemResolver();
  absl::StatusOr<std::vector<std::string>> v4 = resolve(DnsTarget{"127.0.0.1", 50051});
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_THAT(*v4, ElementsAre("127.0.0.1:50051"));
  absl::StatusOr<std::vector<std::string>> v6 = resolve(DnsTarget{"::1", 7});
  if (v6.ok()) {  // hosts without IPv6 may refuse ::1
    EXPECT_THAT(*v6, ElementsAre("[::1]:7"));
  }
}

// ---- discovery against a worker pool --------------------------------------

// The DNS answer, set by the test; counts the lookups.
class ScriptedDns {
 public:
  void Answer(std::vector<std::string> addresses) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(addresses);
  }
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(status);
  }
  int lookups() const {
    absl::MutexLock lock(&mu_);
    return lookups_;
  }
  std::optional<DnsTarget> last_target() const {
    absl::MutexLock lock(&mu_);
    return last_target_;
  }
  Resolver resolver() {
    return [this](const DnsTarget& target) -> absl::StatusOr<std::vector<std::string>> {
      absl::MutexLock lock(&mu_);
      ++lookups_;
      last_target_ = target;
      return answer_;
    };
  }

 private:
  mutable absl::Mutex mu_;
  absl::StatusOr<std::vector<std::string>> answer_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("no answer scripted");
  int lookups_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<DnsTarget> last_target_ ABSL_GUARDED_BY(mu_);
};

class DnsDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WorkerPoolOptions o;
    o.health_interval = absl::Milliseconds(20);
    o.health_timeout = absl::Milliseconds(500);
    o.watch_kv_events = false;
    absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy = MakePolicy("round_robin", {});
    ASSERT_TRUE(policy.ok()) << policy.status();
    pool_ = std::make_unique<WorkerPool>(std::move(o), *std::move(policy));
    for (const char* id : {"a", "b", "c"}) {
      fakes_.push_back(std::make_unique<FakeWorker>(FakeWorkerOptions{.worker_id = id}));
    }
  }
  void TearDown() override {
    discovery_.reset();  // before the pool it feeds
    pool_.reset();
  }

  const std::string& Address(int i) const { return fakes_[i]->address(); }
  void StartDiscovery(absl::Duration refresh, absl::Status expected_start = absl::OkStatus()) {
    discovery_ = std::make_unique<DnsDiscovery>(pool_.get(), DnsTarget{"workers.test", 50051},
                                                refresh, dns_.resolver(), absl::Seconds(30));
    EXPECT_EQ(discovery_->Start().code(), expected_start.code());
  }
  // The pool's DNS workers, sorted by id.
  std::vector<std::string> DnsIds() const {
    std::vector<std::string> ids;
    for (const v1::WorkerInfo& w : pool_->List()) {
      if (w.source() == v1::WorkerInfo::SOURCE_DNS) ids.push_back(w.id());
    }
    return ids;
  }
  v1::WorkerInfo::State StateOf(const std::string& id) const {
    std::optional<v1::WorkerInfo> w = pool_->Get(id);
    return w ? w->state() : v1::WorkerInfo::STATE_UNSPECIFIED;
  }
  absl::StatusOr<Lease> Place(std::vector<std::string> exclude) {
    return pool_->Place(PlacementRequest{}, exclude);
  }

  ScriptedDns dns_;
  std::vector<std::unique_ptr<FakeWorker>> fakes_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<DnsDiscovery> discovery_;
};

TEST_F(DnsDiscoveryTest, WorkersFollowTheResolvedSetAndRemovedOnesDrainFirst) {
  dns_.Answer({Address(0), Address(1)});
  // A long refresh: every change below is applied by RefreshNow.
  StartDiscovery(absl::Hours(1));
  ASSERT_TRUE(dns_.last_target().has_value());
  EXPECT_EQ(dns_.last_target()->host, "workers.test");
  EXPECT_EQ(dns_.last_target()->port, 50051);
  // Start() populated the pool before returning.
  EXPECT_THAT(DnsIds(), ElementsAre("a", "b"));
  ASSERT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  ASSERT_TRUE(pool_->WaitEligible("b", absl::Seconds(5)));

  // Scale up: c appears.
  dns_.Answer({Address(0), Address(1), Address(2)});
  ASSERT_TRUE(discovery_->RefreshNow().ok());
  EXPECT_THAT(DnsIds(), ElementsAre("a", "b", "c"));
  ASSERT_TRUE(pool_->WaitEligible("c", absl::Seconds(5)));

  // A request in flight on b, then b leaves the DNS answer: it drains (no new
  // requests) but stays until its request ends.
  std::optional<Lease> on_b;
  {
    absl::StatusOr<Lease> lease = Place({"a", "c"});
    ASSERT_TRUE(lease.ok()) << lease.status();
    ASSERT_EQ(lease->worker_id(), "b");
    on_b.emplace(*std::move(lease));
  }
  dns_.Answer({Address(2), Address(0)});  // order does not matter
  ASSERT_TRUE(discovery_->RefreshNow().ok());
  EXPECT_EQ(StateOf("b"), v1::WorkerInfo::STATE_DRAINING);
  EXPECT_EQ(Place({"a", "c"}).status().code(), absl::StatusCode::kUnavailable)
      << "a drained worker takes no new requests";
  absl::SleepFor(absl::Milliseconds(100));  // several health polls: still there
  EXPECT_TRUE(pool_->Get("b").has_value()) << "removed while its request was running";
  on_b.reset();  // its request ends
  EXPECT_TRUE(Eventually([&] { return !pool_->Get("b").has_value(); }))
      << "a drained, idle worker is removed";
  EXPECT_THAT(DnsIds(), ElementsAre("a", "c"));
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_HEALTHY);
  EXPECT_EQ(StateOf("c"), v1::WorkerInfo::STATE_HEALTHY);

  // An idle worker that leaves goes at once (after its drain finds it idle).
  dns_.Answer({Address(2)});
  ASSERT_TRUE(discovery_->RefreshNow().ok());
  EXPECT_TRUE(Eventually([&] { return DnsIds() == std::vector<std::string>{"c"}; }));
}

TEST_F(DnsDiscoveryTest, AFailedResolutionKeepsTheLastSet) {
  dns_.Answer({Address(0), Address(1)});
  StartDiscovery(absl::Milliseconds(20));
  ASSERT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  ASSERT_TRUE(pool_->WaitEligible("b", absl::Seconds(5)));

  dns_.Fail(absl::UnavailableError("SERVFAIL"));
  const absl::Status now = discovery_->RefreshNow();
  EXPECT_EQ(now.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(now.message(), HasSubstr("SERVFAIL"));
  EXPECT_THAT(now.message(), HasSubstr("keeping"));
  // The refresh thread keeps failing too: the workers stay in rotation.
  const int lookups = dns_.lookups();
  ASSERT_TRUE(Eventually([&] { return dns_.lookups() >= lookups + 5; }));
  EXPECT_THAT(DnsIds(), ElementsAre("a", "b"));
  EXPECT_EQ(StateOf("a"), v1::WorkerInfo::STATE_HEALTHY);
  EXPECT_EQ(StateOf("b"), v1::WorkerInfo::STATE_HEALTHY);

  // DNS answers again, with a change: the thread applies it on its own.
  dns_.Answer({Address(1), Address(2)});
  EXPECT_TRUE(Eventually([&] {
    return DnsIds() == std::vector<std::string>{"b", "c"};
  })) << "the refresh thread did not apply the new answer";
  EXPECT_TRUE(pool_->WaitEligible("c", absl::Seconds(5)));
}

TEST_F(DnsDiscoveryTest, StartReportsAFailedFirstLookupAndKeepsTrying) {
  dns_.Fail(absl::NotFoundError("NXDOMAIN"));
  StartDiscovery(absl::Milliseconds(20), absl::NotFoundError(""));
  EXPECT_TRUE(DnsIds().empty());
  dns_.Answer({Address(0)});
  EXPECT_TRUE(Eventually([&] { return DnsIds() == std::vector<std::string>{"a"}; }));
  EXPECT_TRUE(pool_->WaitEligible("a", absl::Seconds(5)));
  EXPECT_EQ(discovery_->Start().code(), absl::StatusCode::kFailedPrecondition) << "a second Start";
}

TEST_F(DnsDiscoveryTest, OtherSourcesAreLeftAlone) {
  absl::StatusOr<v1::WorkerInfo> admin = pool_->Add(Address(2), v1::WorkerInfo::SOURCE_ADMIN);
  ASSERT_TRUE(admin.ok()) << admin.status();
  dns_.Answer({Address(0)});
  StartDiscovery(absl::Hours(1));
  dns_.Answer({});  // the name now has no workers: the DNS ones leave
  ASSERT_TRUE(discovery_->RefreshNow().ok());
  EXPECT_TRUE(Eventually([&] { return DnsIds().empty(); }));
  EXPECT_TRUE(pool_->Get("c").has_value()) << "an admin-added worker is not DNS's to remove";
}

TEST_F(DnsDiscoveryTest, DestructionStopsTheRefreshThreadPromptly) {
  dns_.Answer({Address(0)});
  StartDiscovery(absl::Hours(1));
  const absl::Time start = absl::Now();
  discovery_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "the thread waited out its refresh period";
  EXPECT_EQ(dns_.lookups(), 1);
}

}  // namespace
}  // namespace tessera::router
