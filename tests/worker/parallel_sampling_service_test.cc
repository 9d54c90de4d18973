// Parallel sampling on the wire: sampling.n is validated in the one shared
// place (common/api) against RequestLimits.max_n, which a worker reports in
// ModelInfo as its --max-num-seqs; a Generate stream with n > 1 carries each
// message's choice index, ends each choice with its own final message and
// usage, sends prompt_token_ids once, and ends after the last choice.
#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/api/request_limits.h"
#include "common/api/request_validation.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "worker/replica.h"
#include "worker/server/service.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

TEST(ParallelSamplingValidation, NOutsideOneToMaxNIsInvalidArgument) {
  api::RequestLimits limits;
  limits.vocab_size = 512;
  limits.max_model_len = 64;
  limits.max_n = 4;
  v1::SamplingParams p;
  for (const int n : {0, -1, 5}) {
    p.set_n(n);
    const absl::Status s = api::SamplingParamsFromProto(p, limits).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(s.message(), HasSubstr("sampling.n must be in [1, 4]")) << s;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("got ", n)));
  }
  p.set_n(4);
  absl::StatusOr<SamplingParams> ok = api::SamplingParamsFromProto(p, limits);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->n, 4);
  p.clear_n();
  EXPECT_EQ(api::SamplingParamsFromProto(p, limits)->n, 1);  // unset: 1
}

TEST(ParallelSamplingValidation, ModelInfoCarriesMaxNAndAnOldWorkerMeansOne) {
  api::RequestLimits limits;
  limits.max_n = 16;
  const v1::ModelInfo info = api::ToModelInfo(limits);
  EXPECT_EQ(info.max_n(), 16);
  EXPECT_EQ(api::FromModelInfo(info).max_n, 16);
  v1::ModelInfo old = info;
  old.clear_max_n();  // a worker from before parallel sampling
  EXPECT_EQ(api::FromModelInfo(old).max_n, 1);
}

class ParallelSamplingStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ReplicaOptions o;
    o.dummy_preset = "tiny";
    o.dummy_seed = 5;
    o.cache.block_size = 4;
    o.cache.num_blocks = 128;
    o.sched.max_model_len = 256;
    o.sched.max_num_seqs = 6;
    o.threads = 1;
    absl::StatusOr<std::unique_ptr<Replica>> r = BuildReplica(o, MakeSingleProcessCommunicator());
    ASSERT_TRUE(r.ok()) << r.status();
    replica_ = *std::move(r);
    loop_ = std::make_unique<EngineLoop>(*replica_->engine, *replica_->comm, nullptr,
                                         EngineLoopOptions{});
    ctx_.loop = loop_.get();
    ctx_.text = replica_->text.get();
    ctx_.limits = replica_->limits;
    ctx_.worker_id = "w-n";
    ctx_.block_size = 4;
    ctx_.ready = true;
    worker_ = std::make_unique<WorkerService>(ctx_);
    llm_ = std::make_unique<LlmService>(ctx_);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(worker_.get());
    b.RegisterService(llm_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    loop_->Start();
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    worker_stub_ = v1::Worker::NewStub(channel);
    llm_stub_ = v1::Llm::NewStub(channel);
  }
  void TearDown() override {
    if (loop_ == nullptr) return;
    loop_->Drain(Clock::now());
    EXPECT_TRUE(loop_->Wait().ok());
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  std::unique_ptr<Replica> replica_;
  std::unique_ptr<EngineLoop> loop_;
  ServiceContext ctx_;
  std::unique_ptr<WorkerService> worker_;
  std::unique_ptr<LlmService> llm_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Worker::Stub> worker_stub_;
  std::unique_ptr<v1::Llm::Stub> llm_stub_;
};

TEST_F(ParallelSamplingStreamTest, EachChoiceStreamsAndEndsOnItsOwn) {
  v1::GenerateRequest req;
  for (int32_t id : {1, 60, 61, 62, 63, 64}) req.mutable_token_ids()->add_ids(id);
  req.mutable_sampling()->set_temperature(10.0f);
  req.mutable_sampling()->set_seed(3);
  req.mutable_sampling()->set_max_tokens(5);
  req.mutable_sampling()->set_ignore_eos(true);
  req.mutable_sampling()->set_n(3);
  req.set_return_prompt_token_ids(true);
  grpc::ClientContext gctx;
  gctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = worker_stub_->Generate(&gctx, req);
  v1::GenerateResponse m;
  std::map<int, int> tokens, finals;
  int messages = 0, with_prompt = 0, total_finals = 0, after_last_final = 0;
  while (reader->Read(&m)) {
    if (messages++ == 0) {
      EXPECT_EQ(m.prompt_token_ids_size(), 6);
    }
    with_prompt += m.prompt_token_ids_size() > 0;
    ASSERT_GE(m.index(), 0);
    ASSERT_LT(m.index(), 3);
    EXPECT_EQ(finals[m.index()], 0) << "choice " << m.index() << " continued after its end";
    if (total_finals == 3) ++after_last_final;
    tokens[m.index()] += m.token_ids_size();
    if (m.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      ++finals[m.index()];
      ++total_finals;
      EXPECT_EQ(m.finish_reason(), v1::FINISH_REASON_LENGTH);
      EXPECT_EQ(m.usage().prompt_tokens(), 6);
      EXPECT_EQ(m.usage().completion_tokens(), 5) << "choice " << m.index();
    }
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(with_prompt, 1);
  EXPECT_EQ(after_last_final, 0);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(tokens[c], 5) << c;
    EXPECT_EQ(finals[c], 1) << c;
  }
  EXPECT_EQ(replica_->engine->stats().prompt_tokens_computed, 6);
}

TEST_F(ParallelSamplingStreamTest, ListModelsReportsMaxNAndTooLargeAnNIsRefused) {
  grpc::ClientContext lctx;
  v1::ListModelsResponse models;
  ASSERT_TRUE(llm_stub_->ListModels(&lctx, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).max_n(), 6);  // --max-num-seqs

  v1::GenerateRequest req;
  req.mutable_token_ids()->add_ids(1);
  req.mutable_sampling()->set_n(7);
  grpc::ClientContext gctx;
  auto reader = worker_stub_->Generate(&gctx, req);
  v1::GenerateResponse m;
  EXPECT_FALSE(reader->Read(&m));
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("sampling.n must be in [1, 6]"));
}

TEST_F(ParallelSamplingStreamTest, CancelEndsEveryChoiceAndFreesTheBlocks) {
  v1::GenerateRequest req;
  for (int32_t id : {1, 60, 61, 62, 63, 64}) req.mutable_token_ids()->add_ids(id);
  req.mutable_sampling()->set_max_tokens(240);
  req.mutable_sampling()->set_ignore_eos(true);
  req.mutable_sampling()->set_n(4);
  auto gctx = std::make_unique<grpc::ClientContext>();
  auto reader = worker_stub_->Generate(gctx.get(), req);
  v1::GenerateResponse m;
  ASSERT_TRUE(reader->Read(&m));
  gctx->TryCancel();
  while (reader->Read(&m)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  // The abort lands within a step; poll the load (bounded).
  while (Clock::now() < deadline &&
         (loop_->load().in_flight > 0 || loop_->load().kv_blocks_used > 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(loop_->load().in_flight, 0);
  EXPECT_EQ(loop_->load().running, 0);
  EXPECT_EQ(loop_->load().kv_blocks_used, 0);
}

}  // namespace
}  // namespace tessera
