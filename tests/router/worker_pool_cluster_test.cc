// WorkerPool's cluster parameters against in-process fake workers: a worker
// reporting absurd values is refused (naming the field and the range) and
// never blocks a good one, first or not; the majority of the workers decides,
// not whoever answered first; values pinned by the operator win.
#include "tests/router/worker_pool_test_util.h"

namespace tessera::router::pool_test {
namespace {

std::string LastError(WorkerPool& pool, const std::string& id) {
  std::optional<v1::WorkerInfo> w = pool.Get(id);
  return w.has_value() ? w->last_error() : "";
}

TEST_F(WorkerPoolTest, AnAbsurdFirstWorkerDoesNotBlockTheGoodOne) {
  struct Case {
    FakeWorkerOptions bad;
    std::string error;
  };
  const Case cases[] = {
      {{.worker_id = "bad", .block_size = 2147483647},
       "refused: it reports block_size 2147483647 is out of range [1, 1024]"},
      {{.worker_id = "bad", .vocab_size = 0},
       "refused: it reports vocab_size 0 is out of range [1, 16777216]"},
      {{.worker_id = "bad", .max_model_len = -1},
       "refused: it reports max_model_len -1 is out of range [2, 16777216]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error);
    fakes_.push_back(std::make_unique<FakeWorker>(c.bad));
    FakeWorker& bad = *fakes_.back();
    FakeWorker& good = Fake("good");
    MakePool();
    // The bad worker answers first and alone: it is refused, and the
    // cluster adopts nothing from it.
    ASSERT_TRUE(pool_->Add(bad.address(), Source::SOURCE_ADMIN).ok());
    ASSERT_TRUE(Eventually([&] { return LastError(*pool_, "bad") == c.error; }))
        << LastError(*pool_, "bad");
    EXPECT_EQ(StateOf("bad"), v1::WorkerInfo::STATE_UNHEALTHY);
    EXPECT_EQ(pool_->block_size(), 0);
    EXPECT_FALSE(pool_->model_info().has_value());
    // The good one joins and serves with its own parameters.
    AddEligible(good);
    EXPECT_EQ(pool_->block_size(), 16);
    ASSERT_TRUE(pool_->model_info().has_value());
    EXPECT_EQ(pool_->model_info()->vocab_size(), 512);
    EXPECT_EQ(pool_->model_info()->max_model_len(), 2048);
    EXPECT_NE(pool_->model_text(), nullptr);
    absl::StatusOr<Lease> lease = Place();
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(lease->worker_id(), "good");
    EXPECT_EQ(GenerateOn(*lease), 5);
    EXPECT_EQ(StateOf("bad"), v1::WorkerInfo::STATE_UNHEALTHY);
    EXPECT_EQ(bad.generate_calls(), 0);
    pool_.reset();
  }
}

TEST_F(WorkerPoolTest, TheMajorityDecidesNotWhoeverAnsweredFirst) {
  // A plausible but wrong first worker (another block size and vocab).
  fakes_.push_back(std::make_unique<FakeWorker>(
      FakeWorkerOptions{.worker_id = "odd", .block_size = 32, .vocab_size = 1000}));
  FakeWorker& odd = *fakes_.back();
  FakeWorker& g1 = Fake("g1");
  FakeWorker& g2 = Fake("g2");
  MakePool();
  AddEligible(odd);
  EXPECT_EQ(pool_->block_size(), 32);  // alone, it is the majority
  // One good worker ties 1 : 1 (the adopted parameters stay) ...
  ASSERT_TRUE(pool_->Add(g1.address(), Source::SOURCE_ADMIN).ok());
  ASSERT_TRUE(Eventually([&] {
    return LastError(*pool_, "g1") ==
           "refused: block_size: the worker reports 16, the cluster's is 32";
  })) << LastError(*pool_, "g1");
  // ... a second one makes the majority: the cluster follows it, the odd
  // worker is refused naming the field, and the good ones serve.
  ASSERT_TRUE(pool_->Add(g2.address(), Source::SOURCE_ADMIN).ok());
  ASSERT_TRUE(pool_->WaitEligible("g1", absl::Seconds(5)));
  ASSERT_TRUE(pool_->WaitEligible("g2", absl::Seconds(5)));
  EXPECT_EQ(pool_->block_size(), 16);
  EXPECT_EQ(pool_->model_info()->vocab_size(), 512);
  ASSERT_TRUE(Eventually([&] {
    return LastError(*pool_, "odd") ==
           "refused: block_size: the worker reports 32, the cluster's is 16";
  })) << LastError(*pool_, "odd");
  EXPECT_EQ(StateOf("odd"), v1::WorkerInfo::STATE_UNHEALTHY);
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Lease> lease = Place();
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_NE(lease->worker_id(), "odd");
  }
}

TEST_F(WorkerPoolTest, PinnedParametersWin) {
  WorkerPoolOptions o = FastOptions();
  o.cluster_params.block_size = 16;
  o.cluster_params.model_id = "fake";
  fakes_.push_back(
      std::make_unique<FakeWorker>(FakeWorkerOptions{.worker_id = "b32", .block_size = 32}));
  FakeWorker& b32 = *fakes_.back();
  FakeWorker& other = Fake("other", 16, "another-model");
  FakeWorker& good = Fake("good");
  MakePool(o);
  ASSERT_TRUE(pool_->Add(b32.address(), Source::SOURCE_ADMIN).ok());
  ASSERT_TRUE(pool_->Add(other.address(), Source::SOURCE_ADMIN).ok());
  ASSERT_TRUE(Eventually([&] {
    return LastError(*pool_, "b32") ==
           "refused: block_size: the worker reports 32, --block-size says 16";
  })) << LastError(*pool_, "b32");
  ASSERT_TRUE(Eventually([&] {
    return LastError(*pool_, "other") ==
           "refused: model id: the worker serves 'another-model', --model-id says 'fake'";
  })) << LastError(*pool_, "other");
  EXPECT_FALSE(pool_->model_info().has_value());
  AddEligible(good);
  EXPECT_EQ(pool_->block_size(), 16);
  EXPECT_EQ(pool_->model_info()->id(), "fake");
  EXPECT_EQ(StateOf("b32"), v1::WorkerInfo::STATE_UNHEALTHY);
}

}  // namespace
}  // namespace tessera::router::pool_test
