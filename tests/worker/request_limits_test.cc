// One set of request limits per replica (api::RequestLimits), used by the
// service and the engine alike and reported in ModelInfo: a worker started
// with --max-logprobs 50 admits `logprobs: 30` all the way through (the
// engine used to re-check with the default 20 and fail what the service had
// accepted).
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/requests.h"
#include "worker/replica.h"
#include "worker/server/service.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Replica> TinyReplica(int max_logprobs) {
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dummy_seed = 5;
  o.cache.block_size = 16;
  o.cache.num_blocks = 64;
  o.sched.max_model_len = 256;
  o.max_logprobs = max_logprobs;
  o.threads = 1;
  absl::StatusOr<std::unique_ptr<Replica>> r = BuildReplica(o, MakeSingleProcessCommunicator());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

TEST(RequestLimits, TheReplicaReportsItsOwn) {
  std::unique_ptr<Replica> replica = TinyReplica(/*max_logprobs=*/50);
  ASSERT_NE(replica, nullptr);
  EXPECT_EQ(replica->limits.model_name, replica->model_name);
  EXPECT_EQ(replica->limits.vocab_size, replica->config.vocab_size);
  EXPECT_EQ(replica->limits.max_model_len, 256);
  EXPECT_EQ(replica->limits.max_logprobs, 50);
  EXPECT_EQ(replica->limits.max_stop, kDefaultMaxStop);
}

TEST(RequestLimits, TheEngineAdmitsUpToTheConfiguredMaxLogprobs) {
  std::unique_ptr<Replica> replica = TinyReplica(/*max_logprobs=*/50);
  ASSERT_NE(replica, nullptr);
  Engine& engine = *replica->engine;
  EngineRequest thirty = testing::GreedyEngineRequest("thirty", {1, 2, 3}, 2);
  thirty.params.logprobs = 30;
  ASSERT_TRUE(engine.AddRequest(thirty).ok()) << "the service admits 30; so must the engine";
  EngineRequest too_many = testing::GreedyEngineRequest("too-many", {1, 2, 3}, 2);
  too_many.params.logprobs = 51;
  const absl::Status s = engine.AddRequest(too_many);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("logprobs"));
  EXPECT_THAT(s.message(), HasSubstr("50"));
  int steps = 0;
  while (engine.HasUnfinished() && steps++ < 100) {
    absl::StatusOr<std::vector<RequestOutput>> out = engine.Step();
    ASSERT_TRUE(out.ok()) << out.status();
    for (const RequestOutput& o : *out) {
      for (const SampleResult& lp : o.logprobs) EXPECT_EQ(lp.top_logprobs.size(), 30u);
    }
  }
  EXPECT_FALSE(engine.HasUnfinished());
}

TEST(RequestLimits, TheServiceStreamsWhatItAdmitsAndReportsTheLimits) {
  std::unique_ptr<Replica> replica = TinyReplica(/*max_logprobs=*/50);
  ASSERT_NE(replica, nullptr);
  KvEventHub hub(16);
  EngineLoop loop(*replica->engine, *replica->comm, &hub, EngineLoopOptions{});
  ServiceContext ctx;
  ctx.loop = &loop;
  ctx.hub = &hub;
  ctx.text = replica->text.get();
  ctx.limits = replica->limits;
  ctx.worker_id = "w-limits";
  ctx.block_size = 16;
  ctx.ready = true;
  WorkerService worker(ctx);
  LlmService llm(ctx);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&worker);
  b.RegisterService(&llm);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  ASSERT_NE(server, nullptr);
  loop.Start();
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto worker_stub = v1::Worker::NewStub(channel);
  auto llm_stub = v1::Llm::NewStub(channel);

  v1::GenerateRequest req;
  for (int32_t id : {1, 60, 61}) req.mutable_token_ids()->add_ids(id);
  req.mutable_sampling()->set_temperature(0.0f);
  req.mutable_sampling()->set_max_tokens(3);
  req.mutable_sampling()->set_ignore_eos(true);
  req.mutable_sampling()->set_logprobs(30);
  grpc::ClientContext gctx;
  gctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = worker_stub->Generate(&gctx, req);
  v1::GenerateResponse m;
  int tokens = 0;
  while (reader->Read(&m)) {
    tokens += m.token_ids_size();
    for (const v1::TokenLogprob& lp : m.logprobs()) EXPECT_EQ(lp.top_size(), 30);
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 3);

  grpc::ClientContext lctx;
  v1::ListModelsResponse models;
  ASSERT_TRUE(llm_stub->ListModels(&lctx, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).max_logprobs(), 50);
  EXPECT_EQ(models.models(0).max_stop(), kDefaultMaxStop);
  EXPECT_EQ(models.models(0).max_model_len(), 256);

  loop.Drain(Clock::now());
  EXPECT_TRUE(loop.Wait().ok());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

}  // namespace
}  // namespace tessera
