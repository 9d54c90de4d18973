// The router's tessera.v1.Admin (own port, --admin-token) and
// tessera.v1.Registry over real channels, with fake workers: the token check,
// list/add/remove, drain and undrain (a drained worker gets no new requests),
// cluster status counters, error codes, and worker registration + heartbeat.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::HasSubstr;

class AdminServiceTest : public RouterServiceTest {
 protected:
  static void Authorize(grpc::ClientContext& ctx, const std::string& token) {
    ctx.AddMetadata("authorization", "Bearer " + token);
  }
};

TEST_F(AdminServiceTest, EveryCallNeedsTheAdminToken) {
  StartWorkers(1);
  RouterServerOptions o = FastOptions();
  o.admin_token = "t0ken";
  StartRouter(o);

  v1::ListWorkersResponse list;
  {
    grpc::ClientContext ctx;
    grpc::Status s = admin_->ListWorkers(&ctx, v1::ListWorkersRequest(), &list);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), HasSubstr("authorization"));
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx, "t0ken-not");
    EXPECT_EQ(admin_->ListWorkers(&ctx, v1::ListWorkersRequest(), &list).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx, "t0ke");
    EXPECT_EQ(admin_->ListWorkers(&ctx, v1::ListWorkersRequest(), &list).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  for (auto call : std::vector<std::function<grpc::Status(grpc::ClientContext*)>>{
           [&](grpc::ClientContext* c) {
             v1::DrainWorkerRequest r;
             r.set_id("w0");
             v1::DrainWorkerResponse resp;
             return admin_->DrainWorker(c, r, &resp);
           },
           [&](grpc::ClientContext* c) {
             v1::RemoveWorkerRequest r;
             r.set_id("w0");
             v1::RemoveWorkerResponse resp;
             return admin_->RemoveWorker(c, r, &resp);
           },
           [&](grpc::ClientContext* c) {
             v1::AddWorkerRequest r;
             r.set_address("127.0.0.1:1");
             v1::AddWorkerResponse resp;
             return admin_->AddWorker(c, r, &resp);
           },
           [&](grpc::ClientContext* c) {
             v1::ClusterStatus resp;
             return admin_->GetClusterStatus(c, v1::GetClusterStatusRequest(), &resp);
           }}) {
    grpc::ClientContext ctx;
    EXPECT_EQ(call(&ctx).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  // Nothing changed.
  EXPECT_EQ(router_->pool().List().size(), 1u);
  EXPECT_NE(router_->pool().Get("w0")->state(), v1::WorkerInfo::STATE_DRAINING);

  grpc::ClientContext ctx;
  Authorize(ctx, "t0ken");
  ASSERT_TRUE(admin_->ListWorkers(&ctx, v1::ListWorkersRequest(), &list).ok());
  ASSERT_EQ(list.workers_size(), 1);
  EXPECT_EQ(list.workers(0).id(), "w0");
  EXPECT_EQ(list.workers(0).address(), workers_[0]->address());
  EXPECT_EQ(list.workers(0).source(), v1::WorkerInfo::SOURCE_STATIC);

  // The admin port serves health without a token; the client port has no
  // Admin service.
  EXPECT_EQ(CheckHealth(admin_channel_), 1);
  EXPECT_EQ(CheckHealth(admin_channel_, "tessera.v1.Admin"), 1);
  auto wrong_port = v1::Admin::NewStub(channel_);
  grpc::ClientContext c2;
  Authorize(c2, "t0ken");
  EXPECT_EQ(wrong_port->ListWorkers(&c2, v1::ListWorkersRequest(), &list).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(AdminServiceTest, DrainTakesAWorkerOutOfPlacementAndUndrainBringsItBack) {
  StartWorkers(2);
  StartRouter(FastOptions("round_robin"));

  v1::DrainWorkerRequest drain;
  drain.set_id("w0");
  v1::DrainWorkerResponse drained;
  grpc::ClientContext c1;
  ASSERT_TRUE(admin_->DrainWorker(&c1, drain, &drained).ok());
  EXPECT_EQ(drained.worker().id(), "w0");
  EXPECT_EQ(drained.worker().state(), v1::WorkerInfo::STATE_DRAINING);

  for (int i = 0; i < 6; ++i) {
    Stream s = Generate(IdsRequest({1, 2, 3}));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.messages.back().worker_id(), "w1");
  }
  EXPECT_EQ(workers_[0]->generate_calls(), 0);
  EXPECT_EQ(workers_[1]->generate_calls(), 6);

  v1::UndrainWorkerRequest undrain;
  undrain.set_id("w0");
  v1::UndrainWorkerResponse undrained;
  grpc::ClientContext c2;
  ASSERT_TRUE(admin_->UndrainWorker(&c2, undrain, &undrained).ok());
  EXPECT_NE(undrained.worker().state(), v1::WorkerInfo::STATE_DRAINING);
  ASSERT_TRUE(router_->pool().WaitEligible("w0", absl::Seconds(10)));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Generate(IdsRequest({1, 2, 3})).status.ok());
  EXPECT_GE(workers_[0]->generate_calls(), 1);
}

TEST_F(AdminServiceTest, AddRemoveAndTheirErrors) {
  StartWorkers(1);
  StartRouter();
  FakeWorker extra(FakeWorkerOptions{.worker_id = "extra"});

  v1::AddWorkerRequest add;
  add.set_address(extra.address());
  v1::AddWorkerResponse added;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->AddWorker(&ctx, add, &added).ok());
  }
  EXPECT_EQ(added.worker().id(), "extra");
  EXPECT_EQ(added.worker().source(), v1::WorkerInfo::SOURCE_ADMIN);
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(admin_->AddWorker(&ctx, add, &added).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
  {
    grpc::ClientContext ctx;
    v1::AddWorkerRequest bad;
    bad.set_address("no port here");
    EXPECT_EQ(admin_->AddWorker(&ctx, bad, &added).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(admin_->AddWorker(&ctx, v1::AddWorkerRequest(), &added).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::ListWorkersResponse list;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->ListWorkers(&ctx, v1::ListWorkersRequest(), &list).ok());
    EXPECT_EQ(list.workers_size(), 2);
  }

  v1::RemoveWorkerRequest remove;
  remove.set_id("extra");
  v1::RemoveWorkerResponse removed;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->RemoveWorker(&ctx, remove, &removed).ok());
  }
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(admin_->RemoveWorker(&ctx, remove, &removed).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::DrainWorkerRequest drain;
    drain.set_id("nobody");
    v1::DrainWorkerResponse resp;
    EXPECT_EQ(admin_->DrainWorker(&ctx, drain, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::UndrainWorkerRequest undrain;
    undrain.set_id("nobody");
    v1::UndrainWorkerResponse resp;
    EXPECT_EQ(admin_->UndrainWorker(&ctx, undrain, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->ListWorkers(&ctx, v1::ListWorkersRequest(), &list).ok());
    ASSERT_EQ(list.workers_size(), 1);
    EXPECT_EQ(list.workers(0).id(), "w0");
  }
}

TEST_F(AdminServiceTest, ClusterStatusCarriesTheRouterCounters) {
  StartWorkers(2);
  GenerateScript failing;
  failing.fail_after_messages = 0;
  workers_[0]->SetGenerateScript(failing);
  RouterServerOptions o = FastOptions("round_robin");
  o.pool.breaker.failure_threshold = 100;
  StartRouter(o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Generate(IdsRequest({1, 2, 3})).status.ok());

  grpc::ClientContext ctx;
  v1::ClusterStatus status;
  ASSERT_TRUE(admin_->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &status).ok());
  EXPECT_EQ(status.workers(), 2);
  EXPECT_EQ(status.policy(), "round_robin");
  EXPECT_EQ(status.requests_total(), 4);
  EXPECT_EQ(status.requests_failed(), 0);
  EXPECT_EQ(status.requests_retried(), workers_[0]->generate_calls());
  EXPECT_GE(status.requests_retried(), 1);
  EXPECT_EQ(status.requests_rejected(), 0);
  EXPECT_EQ(status.requests_in_flight(), 0);
}

class RegistryServiceTest : public RouterServiceTest {};

TEST_F(RegistryServiceTest, WorkersRegisterAndHeartbeat) {
  StartRouter();
  FakeWorker fw(FakeWorkerOptions{.worker_id = "reg-1"});

  v1::RegisterWorkerRequest reg;
  reg.set_address(fw.address());
  reg.set_worker_id("reg-1");
  v1::RegisterWorkerResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(registry_->RegisterWorker(&ctx, reg, &resp).ok());
  }
  EXPECT_EQ(resp.worker_id(), "reg-1");
  EXPECT_GT(resp.heartbeat_interval_ms(), 0);
  std::optional<v1::WorkerInfo> info = router_->pool().Get("reg-1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->source(), v1::WorkerInfo::SOURCE_REGISTERED);
  EXPECT_EQ(info->address(), fw.address());
  // Registering again keeps the id.
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(registry_->RegisterWorker(&ctx, reg, &resp).ok());
    EXPECT_EQ(resp.worker_id(), "reg-1");
  }

  v1::HeartbeatRequest hb;
  hb.set_worker_id("reg-1");
  v1::HeartbeatResponse hr;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(registry_->Heartbeat(&ctx, hb, &hr).ok());
    EXPECT_TRUE(hr.known());
  }
  hb.set_worker_id("stranger");
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(registry_->Heartbeat(&ctx, hb, &hr).ok());
    EXPECT_FALSE(hr.known());
  }
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(registry_->RegisterWorker(&ctx, v1::RegisterWorkerRequest(), &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  // The registered worker serves requests.
  ASSERT_TRUE(router_->pool().WaitEligible("reg-1", absl::Seconds(10)));
  ASSERT_TRUE(Eventually([&] { return router_->pool().model_info().has_value(); }));
  Stream s = Generate(IdsRequest({1, 2}));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.messages.back().worker_id(), "reg-1");
}

}  // namespace
}  // namespace tessera::router::testing
