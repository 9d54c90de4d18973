// Shared by the WorkerPool tests (worker_pool_*_test.cc, one binary): a
// fixture that runs a WorkerPool with short intervals against in-process
// fake workers over real gRPC channels, a test placement policy, and helpers.
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/worker_pool.h"
#include "tests/router/fake_worker.h"

namespace tessera::router::pool_test {

using ::testing::ElementsAre;
using testing::FakeWorker;
using testing::FakeWorkerOptions;
using ::testing::HasSubstr;
using Source = v1::WorkerInfo;

// Polls `pred` until it holds or `timeout` passes (never a bare sleep as sync).
inline bool Eventually(const std::function<bool()>& pred,
                       absl::Duration timeout = absl::Seconds(5)) {
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

inline v1::KvEventBatch Batch(v1::KvEvent::Kind kind, std::initializer_list<uint64_t> hashes) {
  v1::KvEventBatch b;
  v1::KvEvent* e = b.add_events();
  e->set_kind(kind);
  for (uint64_t h : hashes) e->add_block_hashes(h);
  return b;
}

// Generates on a lease's stub; the number of messages, or -1 on error.
inline int GenerateOn(const Lease& lease) {
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

}  // namespace tessera::router::pool_test
