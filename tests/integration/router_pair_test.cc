// Two tessera-routers side by side in front of the same three stories260K
// replicas (no single point of failure). Each router keeps the cluster's
// exact prefix state from the workers' KV events, not only from what it
// placed itself, so a shared-prefix workload split between the two routers
// reaches (at least 90% of) the prefix-cache hit rate one router reaches
// alone; and a gRPC client given both routers' addresses keeps being served
// when one router goes away.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/prefix_workload.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kReplicas = 3;
constexpr int kKvBlocks = 32;    // as in router_placement_test: ~5 of the 12 prefixes per worker
constexpr int kConcurrency = 4;  // in all, split evenly over the routers used
constexpr PrefixWorkloadShape kShape;

class RouterPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TESSERA_REQUIRE_STORIES();
    std::string error;
    RouterClusterOptions a;
    a.replicas = kReplicas;
    a.worker_args = StoriesWorkerArgs({"--num-kv-blocks", std::to_string(kKvBlocks)});
    a.router.policy = "prefix";
    first_ = RouterCluster::Start(a, &error);
    ASSERT_NE(first_, nullptr) << error;
    // The second router: no replicas of its own, the first one's workers as
    // its static --workers.
    std::string workers;
    for (int i = 0; i < kReplicas; ++i) {
      absl::StrAppend(&workers, i == 0 ? "" : ",", first_->worker_address(i));
    }
    RouterClusterOptions b;
    b.replicas = 0;
    b.router.policy = "prefix";
    b.router.extra_args = {"--workers", workers};
    second_ = RouterCluster::Start(b, &error);
    ASSERT_NE(second_, nullptr) << error;
    for (int i = 0; i < kReplicas; ++i) {
      std::string last;
      ASSERT_TRUE(second_->WaitState(first_->worker_address(i),
                                     tessera::v1::WorkerInfo::STATE_HEALTHY, milliseconds(30000),
                                     &last))
          << "the second router never saw " << first_->worker_address(i) << " healthy: " << last;
    }
  }

  // The workload of `seed`, request i through routers[i % routers.size()],
  // kConcurrency calls at a time in all; every call must complete. Returns
  // the workers' prefix-cache counters over the run.
  PrefixCounters Run(const std::vector<RouterCluster*>& routers, uint64_t seed) {
    const PrefixWorkload w = MakePrefixWorkload(seed, kShape);
    const int n = static_cast<int>(w.requests.size());
    const int k = static_cast<int>(routers.size());
    const PrefixCounters before = ReadPrefixCounters(*first_);
    std::vector<std::unique_ptr<LoadDriver>> drivers;
    for (int r = 0; r < k; ++r) {
      drivers.push_back(std::make_unique<LoadDriver>(
          routers[r]->llm(), kConcurrency / k,
          [&w, n, k, r](int i) -> std::optional<tessera::v1::GenerateRequest> {
            const int index = i * k + r;
            if (index >= n) return std::nullopt;
            return w.requests[index];
          },
          routers[r]->ClientCallOptions()));
    }
    for (int r = 0; r < k; ++r) {
      const std::vector<CallRecord> records = drivers[r]->Join();
      EXPECT_EQ(DescribeFailures(records), "") << "through router " << r;
      for (const CallRecord& call : records) {
        const int index = call.index * k + r;
        ExpectCompleteCall(call, w.prompt_len[index], kShape.max_tokens,
                           absl::StrCat("router ", r, " request ", index));
      }
    }
    const PrefixCounters delta = ReadPrefixCounters(*first_) - before;
    EXPECT_TRUE(delta.ok) << "GetLoad failed on some replica";
    return delta;
  }

  std::unique_ptr<RouterCluster> first_;
  std::unique_ptr<RouterCluster> second_;
};

TEST_F(RouterPairTest, SplitWorkloadKeepsOneRoutersHitRate) {
  // Each hit rate is noisy: a prefix's first requests race its KV events (a
  // second request placed before the first one's prefill is announced lands
  // wherever the load points), and which worker a new prefix lands on decides
  // what the small caches evict; both depend on the machine's speed.
  // Measured ratios two/one on 2 shared cores, one round each: 0.84 to 1.14.
  // So kRounds rounds per setup, alternated, fresh prefixes each (the seed
  // picks them), pooled: the pooled ratio's spread shrinks with the rounds. A
  // second router without the prefix state (least_load) pools to about 0.6
  // of one router here; one that keeps the state must reach 0.9.
  constexpr int kRounds = 5;
  PrefixCounters one;
  PrefixCounters two;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = 3003 * static_cast<uint64_t>(round + 1);
    one += Run({first_.get()}, seed);
    ASSERT_FALSE(HasFatalFailure());
    two += Run({first_.get(), second_.get()}, seed + 1001);
    ASSERT_FALSE(HasFatalFailure());
  }
  std::printf("one router:  %s\ntwo routers: %s (%.0f%% of one)\n", one.Describe().c_str(),
              two.Describe().c_str(),
              one.hit_rate() > 0 ? 100.0 * two.hit_rate() / one.hit_rate() : 0.0);
  // Prefix placement works at all (round_robin gets about 0.3 here).
  ASSERT_GE(one.hit_rate(), 0.5) << one.Describe();
  EXPECT_GE(two.hit_rate(), 0.9 * one.hit_rate())
      << "two routers: " << two.Describe() << "\none router: " << one.Describe();
}

// A client that lists both routers (gRPC's round_robin over the addresses,
// retrying UNAVAILABLE) is still served when one router stops.
TEST_F(RouterPairTest, ClientGivenBothRoutersSurvivesLosingOne) {
  const std::string target =
      absl::StrCat("ipv4:", first_->client_address(), ",", second_->client_address());
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
      "name": [{"service": "tessera.v1.Llm"}],
      "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
    }]})");
  const std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  const std::unique_ptr<tessera::v1::Llm::Stub> llm = tessera::v1::Llm::NewStub(channel);
  const PrefixWorkload w = MakePrefixWorkload(5005, {.prefixes = 2, .suffixes_per_prefix = 4});
  auto run = [&](size_t i, const std::string& when) {
    const CallRecord r = RunLlmGenerate(*llm, w.requests[i], first_->ClientCallOptions());
    ExpectCompleteCall(r, w.prompt_len[i], kShape.max_tokens, absl::StrCat(when, " request ", i));
  };
  for (size_t i = 0; i < 4; ++i) run(i, "both routers up:");
  first_->StopRouter();
  for (size_t i = 4; i < w.requests.size(); ++i) run(i, "first router stopped:");
}

}  // namespace
}  // namespace tessera::testing
