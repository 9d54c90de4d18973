// Authentication in tessera-router (--admin-token, --api-key) and the CLI's
// exit codes: Admin calls and `tessera` admin commands without the token or
// with a wrong one are refused (UNAUTHENTICATED, exit 4) and change nothing,
// with it they work; Llm calls and `tessera generate` need the API key; a
// worker registering with `--router` gets in only with the router's
// --cluster-token (not with the API key);
// health answers without credentials. Dummy `tiny` replicas: no model files.
#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::WorkerInfo;

constexpr char kAdminToken[] = "admin-token-3f9a";
constexpr char kApiKey[] = "api-key-71c2";
constexpr char kClusterToken[] = "cluster-token-d41e";

std::vector<std::string> TinyWorkerArgs() {
  return {"--dummy",         "tiny", "--threads",   "1",
          "--num-kv-blocks", "256",  "--log-level", WorkerLogLevel()};
}

class RouterAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    RouterOptions router;
    router.admin_token = kAdminToken;
    router.api_key = kApiKey;
    router.extra_args = {"--cluster-token", kClusterToken};
    cluster_ = RouterCluster::Start(
        {.replicas = 1, .worker_args = TinyWorkerArgs(), .router = router}, &error);
    ASSERT_NE(cluster_, nullptr) << error;
  }

  // Every Admin RPC with `token` (nullopt: no authorization header); with
  // `membership` false, not AddWorker / RemoveWorker.
  std::vector<std::pair<std::string, grpc::Status>> AdminCalls(std::optional<std::string> token,
                                                               bool membership = true) {
    auto& admin = cluster_->admin();
    const std::string id = cluster_->RouterId(0);
    std::vector<std::pair<std::string, grpc::Status>> out;
    auto prepare = [&](grpc::ClientContext* ctx) {
      cluster_->PrepareAdmin(ctx, token ? *token : std::string());
    };
    {
      grpc::ClientContext ctx;
      prepare(&ctx);
      tessera::v1::ListWorkersResponse resp;
      out.emplace_back("ListWorkers", admin.ListWorkers(&ctx, {}, &resp));
    }
    {
      grpc::ClientContext ctx;
      prepare(&ctx);
      tessera::v1::ClusterStatus resp;
      out.emplace_back("GetClusterStatus", admin.GetClusterStatus(&ctx, {}, &resp));
    }
    {
      grpc::ClientContext ctx;
      prepare(&ctx);
      tessera::v1::DrainWorkerRequest req;
      req.set_id(id);
      tessera::v1::DrainWorkerResponse resp;
      out.emplace_back("DrainWorker", admin.DrainWorker(&ctx, req, &resp));
    }
    {
      grpc::ClientContext ctx;
      prepare(&ctx);
      tessera::v1::UndrainWorkerRequest req;
      req.set_id(id);
      tessera::v1::UndrainWorkerResponse resp;
      out.emplace_back("UndrainWorker", admin.UndrainWorker(&ctx, req, &resp));
    }
    if (!membership) return out;
    {
      grpc::ClientContext ctx;
      prepare(&ctx);
      tessera::v1::AddWorkerRequest req;
      req.set_address("127.0.0.1:1");
      tessera::v1::AddWorkerResponse resp;
      out.emplace_back("AddWorker", admin.AddWorker(&ctx, req, &resp));
    }
    {
      grpc::ClientContext ctx;
      prepare(&ctx);
      tessera::v1::RemoveWorkerRequest req;
      req.set_id(id);
      tessera::v1::RemoveWorkerResponse resp;
      out.emplace_back("RemoveWorker", admin.RemoveWorker(&ctx, req, &resp));
    }
    return out;
  }

  // The one worker is still there, HEALTHY, and nothing was added.
  void ExpectClusterUnchanged() {
    std::vector<WorkerInfo> workers;
    const grpc::Status status = cluster_->ListWorkers(&workers);
    ASSERT_TRUE(status.ok()) << Describe(status);
    ASSERT_EQ(workers.size(), 1u) << cluster_->DescribeWorkers();
    EXPECT_EQ(workers[0].state(), WorkerInfo::STATE_HEALTHY) << cluster_->DescribeWorkers();
  }

  std::unique_ptr<RouterCluster> cluster_;
};

TEST_F(RouterAuthTest, AdminCallsNeedTheToken) {
  for (const std::optional<std::string>& token :
       {std::optional<std::string>(), std::optional<std::string>("wrong-token"),
        std::optional<std::string>(kApiKey)}) {
    const std::string what = token ? "token '" + *token + "'" : "no token";
    for (const auto& [name, status] : AdminCalls(token)) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << name << " with " << what << ": " << Describe(status);
    }
    ExpectClusterUnchanged();
  }
  for (const char* command : {"workers", "status"}) {
    const CliResult none = cluster_->RunCli({"--router", cluster_->admin_address(), command});
    EXPECT_EQ(none.exit_code, 4) << none.Describe();
    const CliResult wrong = cluster_->RunCli(
        {"--router", cluster_->admin_address(), "--admin-token", "wrong-token", command});
    EXPECT_EQ(wrong.exit_code, 4) << wrong.Describe();
    const CliResult right = cluster_->AdminCli({command});
    EXPECT_EQ(right.exit_code, 0) << right.Describe();
  }
  const std::string id = cluster_->RouterId(0);
  const CliResult wrong_drain = cluster_->RunCli(
      {"--router", cluster_->admin_address(), "--admin-token", "wrong-token", "drain", id});
  EXPECT_EQ(wrong_drain.exit_code, 4) << wrong_drain.Describe();
  ExpectClusterUnchanged();

  // With the token the calls work (drain, then undrain: no change).
  for (const auto& [name, status] : AdminCalls(std::string(kAdminToken), false)) {
    EXPECT_TRUE(status.ok()) << name << ": " << Describe(status);
  }
  ExpectClusterUnchanged();
  // Health answers without credentials on both ports.
  EXPECT_EQ(CheckHealth(*cluster_->admin_channel(), milliseconds(5000)), HealthState::kServing);
  EXPECT_EQ(CheckHealth(*cluster_->client_channel(), milliseconds(5000)), HealthState::kServing);
}

TEST_F(RouterAuthTest, GenerateNeedsTheApiKey) {
  const tessera::v1::GenerateRequest request = GreedyLlmRequest({1, 300, 301, 302}, 8, "auth-gen");
  for (const std::string& key :
       {std::string(), std::string("wrong-key"), std::string(kAdminToken)}) {
    const CallRecord r =
        RunLlmGenerate(cluster_->llm(), request, {.deadline = milliseconds(10000), .api_key = key});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << "key '" << key << "': " << Describe(r.status);
    EXPECT_TRUE(r.tokens.empty());
    grpc::ClientContext ctx;
    if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
    tessera::v1::ListModelsResponse models;
    const grpc::Status listed = cluster_->llm().ListModels(&ctx, {}, &models);
    EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << "ListModels with key '" << key << "': " << Describe(listed);
  }
  const CallRecord ok = RunLlmGenerate(cluster_->llm(), request, cluster_->ClientCallOptions());
  ExpectCompleteCall(ok, 4, 8, "with the API key");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kApiKey);
    tessera::v1::ListModelsResponse models;
    const grpc::Status listed = cluster_->llm().ListModels(&ctx, {}, &models);
    EXPECT_TRUE(listed.ok()) << Describe(listed);
    EXPECT_EQ(models.models_size(), 1) << models.ShortDebugString();
  }
  // The CLI: exit 4 without the key, 0 and some text with it.
  const CliResult none = cluster_->RunCli({"--endpoint", cluster_->client_address(), "generate",
                                           "Once upon a time", "--max-tokens", "8"});
  EXPECT_EQ(none.exit_code, 4) << none.Describe();
  const CliResult wrong = cluster_->RunCli({"--endpoint", cluster_->client_address(), "--api-key",
                                            "wrong-key", "generate", "Once", "--max-tokens", "8"});
  EXPECT_EQ(wrong.exit_code, 4) << wrong.Describe();
  const CliResult right =
      cluster_->ClientCli({"generate", "Once upon a time", "--max-tokens", "8"});
  EXPECT_EQ(right.exit_code, 0) << right.Describe();
  EXPECT_FALSE(right.out.empty()) << right.Describe();
}

TEST_F(RouterAuthTest, RegistrationNeedsTheClusterToken) {
  std::string error;
  const std::vector<std::string> router = {"--router", cluster_->client_address(),
                                           "--heartbeat-interval-ms", "200"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = router;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const int no_key = cluster_->AddReplica(with({}), &error);
  ASSERT_GE(no_key, 0) << error;
  const int wrong_key = cluster_->AddReplica(with({"--cluster-token", kApiKey}), &error);
  ASSERT_GE(wrong_key, 0) << error;
  const int good = cluster_->AddReplica(with({"--cluster-token", kClusterToken}), &error);
  ASSERT_GE(good, 0) << error;

  std::string last;
  ASSERT_TRUE(cluster_->WaitState(cluster_->worker_address(good), WorkerInfo::STATE_HEALTHY,
                                  milliseconds(20000), &last))
      << "the worker with the cluster token never got in: " << last << cluster_->DescribeWorkers();
  const std::optional<WorkerInfo> info = cluster_->FindWorker(cluster_->worker_address(good));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->source(), WorkerInfo::SOURCE_REGISTERED) << info->ShortDebugString();
  EXPECT_EQ(info->id(), cluster_->worker_id(good));
  // The others had as long and more (they started first); give them a few
  // more heartbeats, then they must still be out.
  EXPECT_FALSE(
      PollUntil(milliseconds(1500),
                [&] {
                  return cluster_->FindWorker(cluster_->worker_address(no_key)).has_value() ||
                         cluster_->FindWorker(cluster_->worker_address(wrong_key)).has_value();
                }))
      << "a worker without the cluster token registered:" << cluster_->DescribeWorkers();

  // The registered worker serves: with the static one drained, it gets them.
  const CliResult drained = cluster_->AdminCli({"drain", cluster_->RouterId(0)});
  ASSERT_EQ(drained.exit_code, 0) << drained.Describe();
  for (int i = 0; i < 3; ++i) {
    const CallRecord r = RunLlmGenerate(
        cluster_->llm(), GreedyLlmRequest({1, 300, 301}, 4, "reg-" + std::to_string(i)),
        cluster_->ClientCallOptions());
    ExpectCompleteCall(r, 3, 4, "call " + std::to_string(i));
    EXPECT_EQ(r.worker_id, cluster_->worker_id(good));
  }
}

TEST_F(RouterAuthTest, CliExitCodes) {
  const CliResult unreachable =
      cluster_->RunCli({"--router", "127.0.0.1:1", "--admin-token", kAdminToken, "workers"});
  EXPECT_EQ(unreachable.exit_code, 5) << unreachable.Describe();
  const CliResult usage = cluster_->RunCli({"frobnicate"});
  EXPECT_EQ(usage.exit_code, 2) << usage.Describe();
  const CliResult missing = cluster_->AdminCli({"drain"});
  EXPECT_EQ(missing.exit_code, 2) << missing.Describe();
  const CliResult unknown = cluster_->AdminCli({"undrain", "no-such-worker"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.Describe();
  const CliResult ok = cluster_->AdminCli({"status", "--json"});
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  EXPECT_NE(ok.out.find("\"healthy\""), std::string::npos) << ok.Describe();
}

}  // namespace
}  // namespace tessera::testing
