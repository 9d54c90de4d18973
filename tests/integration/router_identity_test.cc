// Worker identity and verified cluster parameters with real processes
// (tessera-router and dummy `tiny` tessera-worker replicas):
// - a second worker process registering an id another, healthy process has
//   registered from its address is refused: the real worker keeps its entry
//   and serves; once the real one dies and fails its health checks, the
//   newcomer's registration (retried by the worker) is accepted;
// - a worker with other parameters that answers first does not decide the
//   cluster's: two good workers outvote it, it is refused naming the field,
//   and requests are served.
#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::WorkerInfo;

std::vector<std::string> TinyWorkerArgs() {
  return {"--dummy",         "tiny", "--threads",   "1",
          "--num-kv-blocks", "256",  "--log-level", WorkerLogLevel()};
}

TEST(RouterIdentityTest, AnIdTakeoverIsRefusedWhileTheRealWorkerIsHealthy) {
  std::string error;
  RouterOptions router;
  router.static_workers = false;
  std::unique_ptr<RouterCluster> cluster = RouterCluster::Start(
      {.replicas = 0, .worker_args = TinyWorkerArgs(), .router = router}, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const std::vector<std::string> registering = {
      "--router", cluster->client_address(), "--heartbeat-interval-ms", "200", "--worker-id",
      "w-shared"};
  const int real = cluster->AddReplica(registering, &error);
  ASSERT_GE(real, 0) << error;
  const std::string real_address = cluster->worker_address(real);
  std::string last;
  ASSERT_TRUE(
      cluster->WaitState(real_address, WorkerInfo::STATE_HEALTHY, milliseconds(20000), &last))
      << last << cluster->DescribeWorkers();

  // Another process claims the same id from its own address.
  const int rogue = cluster->AddReplica(registering, &error);
  ASSERT_GE(rogue, 0) << error;
  const std::string rogue_address = cluster->worker_address(rogue);
  // It keeps trying (with backoff); the real worker keeps its entry, stays
  // in rotation (its heartbeats count) and serves every request.
  EXPECT_FALSE(PollUntil(milliseconds(3000), [&] {
    const std::optional<WorkerInfo> w = cluster->FindWorker("w-shared");
    return !w.has_value() || w->address() != real_address ||
           w->state() != WorkerInfo::STATE_HEALTHY;
  })) << cluster->DescribeWorkers();
  EXPECT_FALSE(cluster->FindWorker(rogue_address).has_value()) << cluster->DescribeWorkers();
  for (int i = 0; i < 3; ++i) {
    const CallRecord r = RunLlmGenerate(
        cluster->llm(), GreedyLlmRequest({1, 300, 301}, 4, "id-" + std::to_string(i)),
        cluster->ClientCallOptions());
    ExpectCompleteCall(r, 3, 4, "call " + std::to_string(i));
  }
  const std::optional<tessera::v1::LoadReport> rogue_load = cluster->ReplicaLoad(rogue);
  ASSERT_TRUE(rogue_load.has_value());
  EXPECT_EQ(rogue_load->in_flight(), 0);
  EXPECT_EQ(rogue_load->prefix_cache_queried_tokens(), 0) << "the rogue received a request";

  // The real worker dies: once the router's polls have failed it, the
  // newcomer's retried registration takes the id over.
  cluster->KillReplica(real);
  EXPECT_TRUE(cluster->WaitWorker(
      "w-shared",
      [&](const WorkerInfo& w) {
        return w.address() == rogue_address && w.state() == WorkerInfo::STATE_HEALTHY;
      },
      milliseconds(30000), &last))
      << last << cluster->DescribeWorkers();
}

TEST(RouterIdentityTest, AWorkerWithOtherParametersAnsweringFirstDoesNotDecide) {
  std::string error;
  RouterOptions router;
  router.static_workers = false;
  std::unique_ptr<RouterCluster> cluster = RouterCluster::Start(
      {.replicas = 2, .worker_args = TinyWorkerArgs(), .router = router}, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const int odd = cluster->AddReplica({"--block-size", "32"}, &error);
  ASSERT_GE(odd, 0) << error;
  std::string last;
  // The odd worker is the first and only one: it is the majority.
  const CliResult added = cluster->AdminCli({"add", cluster->worker_address(odd)});
  ASSERT_EQ(added.exit_code, 0) << added.Describe();
  ASSERT_TRUE(cluster->WaitState(cluster->worker_address(odd), WorkerInfo::STATE_HEALTHY,
                                 milliseconds(20000), &last))
      << last << cluster->DescribeWorkers();
  // Two good workers outvote it.
  for (int i : {0, 1}) {
    const CliResult r = cluster->AdminCli({"add", cluster->worker_address(i)});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  for (int i : {0, 1}) {
    EXPECT_TRUE(cluster->WaitState(cluster->worker_address(i), WorkerInfo::STATE_HEALTHY,
                                   milliseconds(20000), &last))
        << last << cluster->DescribeWorkers();
  }
  EXPECT_TRUE(cluster->WaitWorker(
      cluster->worker_address(odd),
      [](const WorkerInfo& w) {
        return w.state() == WorkerInfo::STATE_UNHEALTHY &&
               w.last_error().find("block_size: the worker reports 32, the cluster's is 16") !=
                   std::string::npos;
      },
      milliseconds(20000), &last))
      << last << cluster->DescribeWorkers();
  for (int i = 0; i < 4; ++i) {
    const CallRecord r =
        RunLlmGenerate(cluster->llm(), GreedyLlmRequest({1, 300, 301}, 4, "p-" + std::to_string(i)),
                       cluster->ClientCallOptions());
    ExpectCompleteCall(r, 3, 4, "call " + std::to_string(i));
    EXPECT_NE(r.worker_id, cluster->worker_id(odd));
  }
}

}  // namespace
}  // namespace tessera::testing
