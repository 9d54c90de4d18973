// The cluster token (--cluster-token) between tessera-router and its
// workers: a worker registering without it (or with the client API key in
// its place) is refused and gets no request, while the clients' requests all
// go to the real workers; a worker's port answers every call but health with
// UNAUTHENTICATED without the token (Worker.Drain drains nothing), while the
// router, which sends it, keeps using and draining the worker; a worker on a
// non-loopback --host without a token refuses to start. Dummy `tiny`
// replicas: no model files.
#include <set>

#include "gtest/gtest.h"
#include "tests/integration/cluster_process.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::WorkerInfo;

constexpr char kToken[] = "cluster-token-5be1d0";
constexpr char kApiKey[] = "client-api-key-09ac";

std::vector<std::string> TokenWorkerArgs() {
  return {"--dummy",     "tiny",           "--threads",       "1",   "--num-kv-blocks", "256",
          "--log-level", WorkerLogLevel(), "--cluster-token", kToken};
}

class ClusterAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    RouterOptions router;
    router.api_key = kApiKey;
    router.extra_args = {"--cluster-token", kToken};
    cluster_ = RouterCluster::Start(
        {.replicas = 2, .worker_args = TokenWorkerArgs(), .router = router}, &error);
    ASSERT_NE(cluster_, nullptr) << error;
  }
  void TearDown() override {
    if (cluster_ != nullptr) cluster_->PrintLogsIfTestFailed();
  }

  std::unique_ptr<RouterCluster> cluster_;
};

TEST_F(ClusterAuthTest, RogueRegistrationIsRefusedAndGetsNoRequests) {
  const std::vector<std::string> to_router = {"--router", cluster_->client_address(),
                                              "--heartbeat-interval-ms", "200"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = to_router;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  std::string error;
  // No token at all, and the client API key where the cluster token goes
  // (the API key used to open Registry).
  const int no_token = cluster_->AddReplica(with({"--cluster-token="}), &error);
  ASSERT_GE(no_token, 0) << error;
  const int api_key = cluster_->AddReplica(with({"--cluster-token", kApiKey}), &error);
  ASSERT_GE(api_key, 0) << error;
  for (const int rogue : {no_token, api_key}) {
    // Registration logs its first refusal: code 16 is UNAUTHENTICATED.
    EXPECT_TRUE(PollUntil(milliseconds(20000),
                          [&] {
                            return cluster_->replica(rogue)->LogTail(20000).find("failed (16: ") !=
                                   std::string::npos;
                          }))
        << "replica " << rogue << " was never refused:\n"
        << cluster_->replica(rogue)->LogTail();
    EXPECT_FALSE(cluster_->FindWorker(cluster_->worker_address(rogue)).has_value())
        << cluster_->DescribeWorkers();
    EXPECT_FALSE(cluster_->FindWorker(cluster_->worker_id(rogue)).has_value())
        << cluster_->DescribeWorkers();
  }
  // The real workers take every request.
  const std::set<std::string> real = {cluster_->worker_id(0), cluster_->worker_id(1)};
  for (int i = 0; i < 12; ++i) {
    const CallRecord r = RunLlmGenerate(
        cluster_->llm(), GreedyLlmRequest({1, 300 + i, 301, 302}, 4, "rogue-" + std::to_string(i)),
        cluster_->ClientCallOptions());
    ExpectCompleteCall(r, 4, 4, "call " + std::to_string(i));
    EXPECT_TRUE(real.count(r.worker_id)) << "call " << i << " went to '" << r.worker_id << "'";
  }
  std::vector<WorkerInfo> workers;
  ASSERT_TRUE(cluster_->ListWorkers(&workers).ok());
  EXPECT_EQ(workers.size(), 2u) << cluster_->DescribeWorkers();

  // A worker with the token registers (the refusals were the credential's).
  const int good = cluster_->AddReplica(with({}), &error);
  ASSERT_GE(good, 0) << error;
  std::string last;
  EXPECT_TRUE(cluster_->WaitState(cluster_->worker_address(good), WorkerInfo::STATE_HEALTHY,
                                  milliseconds(20000), &last))
      << "the worker with the token never got in: " << last;
}

TEST_F(ClusterAuthTest, WorkerPortNeedsTheToken) {
  WorkerCluster& worker = *cluster_->replica(0);
  auto expect_refused = [](const grpc::Status& s, const std::string& what) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << what << ": " << Describe(s);
    EXPECT_NE(s.error_message().find("--cluster-token"), std::string::npos) << what;
  };
  // worker.stub() is a plain channel without the token.
  for (const std::string& token : {std::string(), std::string("wrong"), std::string(kApiKey)}) {
    auto channel = ClusterTestChannel(worker.address(), token);
    auto stub = tessera::v1::Worker::NewStub(channel);
    auto llm = tessera::v1::Llm::NewStub(channel);
    const std::string with = " with token '" + token + "'";
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      tessera::v1::DrainResponse resp;
      expect_refused(stub->Drain(&ctx, {}, &resp), "Drain" + with);
    }
    grpc::Status load_status;
    EXPECT_FALSE(GetLoad(*stub, milliseconds(5000), &load_status).has_value());
    expect_refused(load_status, "GetLoad" + with);
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      tessera::v1::GetTokenizerResponse resp;
      expect_refused(stub->GetTokenizer(&ctx, {}, &resp), "GetTokenizer" + with);
    }
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      auto reader = stub->WatchKvEvents(&ctx, {});
      tessera::v1::KvEventBatch batch;
      EXPECT_FALSE(reader->Read(&batch));
      expect_refused(reader->Finish(), "WatchKvEvents" + with);
    }
    const StreamResult direct = RunGenerate(*stub, GreedyRequest({1, 2, 3}, 4));
    expect_refused(direct.status, "Worker.Generate" + with);
    EXPECT_TRUE(direct.tokens.empty());
    const CallRecord llm_direct =
        RunLlmGenerate(*llm, GreedyLlmRequest({1, 2, 3}, 4, ""), {.deadline = milliseconds(5000)});
    expect_refused(llm_direct.status, "Llm.Generate" + with);
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      tessera::v1::ListModelsResponse resp;
      expect_refused(llm->ListModels(&ctx, {}, &resp), "Llm.ListModels" + with);
    }
    // Every method of both services, including any added later.
    std::vector<std::string> methods = ServiceMethods("tessera.v1.Worker");
    const std::vector<std::string> llm_methods = ServiceMethods("tessera.v1.Llm");
    methods.insert(methods.end(), llm_methods.begin(), llm_methods.end());
    ASSERT_GE(methods.size(), 8u);
    for (const std::string& method : methods) {
      expect_refused(CallWithEmptyRequest(channel, method, milliseconds(5000)), method + with);
    }
    // Health stays open.
    EXPECT_EQ(CheckHealth(*channel, milliseconds(5000)), HealthState::kServing) << with;
  }
  // Nothing was drained: the router still sees it HEALTHY and uses it.
  std::optional<WorkerInfo> info = cluster_->FindWorker(cluster_->worker_address(0));
  ASSERT_TRUE(info.has_value()) << cluster_->DescribeWorkers();
  EXPECT_EQ(info->state(), WorkerInfo::STATE_HEALTHY) << info->ShortDebugString();
  auto with_token = ClusterTestChannel(worker.address(), kToken);
  auto stub = tessera::v1::Worker::NewStub(with_token);
  const std::optional<tessera::v1::LoadReport> load = GetLoad(*stub);
  ASSERT_TRUE(load.has_value());
  EXPECT_FALSE(load->draining());

  // The router (it holds the token) drains it...
  const CliResult drained = cluster_->AdminCli({"drain", cluster_->RouterId(0)});
  ASSERT_EQ(drained.exit_code, 0) << drained.Describe();
  for (int i = 0; i < 4; ++i) {
    const CallRecord r = RunLlmGenerate(
        cluster_->llm(), GreedyLlmRequest({1, 300, 301}, 4, "after-drain-" + std::to_string(i)),
        cluster_->ClientCallOptions());
    ExpectCompleteCall(r, 3, 4, "call " + std::to_string(i));
    EXPECT_EQ(r.worker_id, cluster_->worker_id(1));
  }
  // ...and so does a direct Drain that carries the token.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  tessera::v1::DrainResponse resp;
  const grpc::Status s = stub->Drain(&ctx, {}, &resp);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(PollUntil(milliseconds(10000), [&] {
    return CheckHealth(*with_token, milliseconds(1000)) != HealthState::kServing;
  })) << "the worker kept serving after a Drain with the token";
}

TEST(ClusterAuthStartTest, PublicHostNeedsAToken) {
  const std::string dir = MakeTempDir("tessera_cluster_auth");
  ASSERT_FALSE(dir.empty());
  std::string error;
  // --host 0.0.0.0 without a token: exits non-zero, saying what to set.
  {
    const std::string port_file = dir + "/refused.port";
    std::unique_ptr<Process> p =
        Process::Spawn(TinyWorkerCommand("0.0.0.0", port_file, {}), dir + "/refused.log", &error,
                       {"TESSERA_CLUSTER_TOKEN="});
    ASSERT_NE(p, nullptr) << error;
    const std::optional<int> code = p->WaitExit(milliseconds(60000));
    ASSERT_TRUE(code.has_value()) << "still running:\n" << p->LogTail();
    EXPECT_NE(*code, 0) << p->LogTail();
    const std::string log = p->LogTail(20000);
    EXPECT_NE(log.find("--host 0.0.0.0 (not loopback)"), std::string::npos) << log;
    EXPECT_NE(log.find("set --cluster-token"), std::string::npos) << log;
    EXPECT_EQ(ReadTestFile(port_file), "") << "it listened before refusing";
  }
  // The same with a token (from the environment) starts and serves.
  {
    const std::string port_file = dir + "/token.port";
    std::unique_ptr<Process> p =
        Process::Spawn(TinyWorkerCommand("0.0.0.0", port_file, {}), dir + "/token.log", &error,
                       {std::string("TESSERA_CLUSTER_TOKEN=") + kToken});
    ASSERT_NE(p, nullptr) << error;
    const std::optional<std::vector<int>> ports =
        WaitPortFile(port_file, 1, *p, milliseconds(60000));
    ASSERT_TRUE(ports.has_value()) << p->LogTail();
    auto channel = ClusterTestChannel("127.0.0.1:" + std::to_string((*ports)[0]), kToken);
    auto stub = tessera::v1::Worker::NewStub(channel);
    EXPECT_TRUE(GetLoad(*stub, milliseconds(10000)).has_value()) << p->LogTail();
    p->KillGroup();
  }
}

}  // namespace
}  // namespace tessera::testing
