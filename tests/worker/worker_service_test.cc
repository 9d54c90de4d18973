// The Worker and Llm services in-process over a real gRPC channel, on a dummy
// tiny replica (TP=1): streaming Generate, validation statuses, stop strings,
// cancellation, GetLoad, WatchKvEvents, Tokenize/ListModels and Drain.
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/api/rejection.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "worker/replica.h"
#include "worker/server/service.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

struct Stream {
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status;
  std::vector<int32_t> tokens() const {
    std::vector<int32_t> t;
    for (const auto& m : messages) t.insert(t.end(), m.token_ids().begin(), m.token_ids().end());
    return t;
  }
  std::string text() const {
    std::string t;
    for (const auto& m : messages) t += m.text();
    return t;
  }
};

class WorkerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ReplicaOptions o;
    o.dummy_preset = "tiny";
    o.dummy_seed = 3;
    o.cache.block_size = 16;
    o.cache.num_blocks = 256;
    o.sched.max_model_len = 512;
    o.threads = 1;
    auto r = BuildReplica(o, MakeSingleProcessCommunicator());
    ASSERT_TRUE(r.ok()) << r.status();
    replica_ = std::move(*r);
    hub_ = std::make_unique<KvEventHub>(16);
    loop_ = std::make_unique<EngineLoop>(*replica_->engine, *replica_->comm, hub_.get(),
                                         EngineLoopOptions{});
    ctx_.loop = loop_.get();
    ctx_.hub = hub_.get();
    ctx_.text = replica_->text.get();
    ctx_.limits.model_name = replica_->model_name;
    ctx_.limits.vocab_size = static_cast<int32_t>(replica_->config.vocab_size);
    ctx_.limits.max_model_len = replica_->sched.max_model_len;
    ctx_.worker_id = "w-test";
    ctx_.block_size = 16;
    ctx_.drain = [this] { return loop_->Drain(Clock::now() + std::chrono::seconds(30)); };
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
    if (loop_) {
      loop_->Drain(Clock::now());
      EXPECT_TRUE(loop_->Wait().ok());
    }
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  static v1::GenerateRequest Greedy(int max_tokens, std::vector<int32_t> prompt = {1, 60, 61}) {
    v1::GenerateRequest r;
    for (int32_t id : prompt) r.mutable_token_ids()->add_ids(id);
    r.mutable_sampling()->set_temperature(0.0f);
    r.mutable_sampling()->set_max_tokens(max_tokens);
    r.mutable_sampling()->set_ignore_eos(true);
    return r;
  }
  Stream Generate(const v1::GenerateRequest& req, bool llm = false) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = llm ? llm_stub_->Generate(&ctx, req) : worker_stub_->Generate(&ctx, req);
    Stream s;
    v1::GenerateResponse m;
    while (reader->Read(&m)) s.messages.push_back(m);
    s.status = reader->Finish();
    return s;
  }
  v1::LoadReport Load() {
    grpc::ClientContext ctx;
    v1::LoadReport r;
    EXPECT_TRUE(worker_stub_->GetLoad(&ctx, v1::GetLoadRequest(), &r).ok());
    return r;
  }

  std::unique_ptr<Replica> replica_;
  std::unique_ptr<KvEventHub> hub_;
  std::unique_ptr<EngineLoop> loop_;
  ServiceContext ctx_;
  std::unique_ptr<WorkerService> worker_;
  std::unique_ptr<LlmService> llm_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Worker::Stub> worker_stub_;
  std::unique_ptr<v1::Llm::Stub> llm_stub_;
};

TEST_F(WorkerServiceTest, StreamsTokensAndEndsWithUsageAndTimings) {
  v1::GenerateRequest req = Greedy(6);
  req.set_request_id("abc");
  req.mutable_sampling()->set_logprobs(2);
  Stream s = Generate(req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_FALSE(s.messages.empty());
  EXPECT_EQ(s.tokens().size(), 6u);
  for (size_t i = 0; i + 1 < s.messages.size(); ++i) {
    EXPECT_EQ(s.messages[i].finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  }
  const v1::GenerateResponse& last = s.messages.back();
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.request_id(), "abc");
  EXPECT_EQ(last.worker_id(), "w-test");
  EXPECT_EQ(last.usage().prompt_tokens(), 3);
  EXPECT_EQ(last.usage().completion_tokens(), 6);
  EXPECT_GT(last.timings().total_time_us(), 0);
  EXPECT_GE(last.timings().total_time_us(), last.timings().time_to_first_token_us());
  EXPECT_GE(last.timings().time_to_first_token_us(), last.timings().queue_time_us());
  int logprobs = 0;
  for (const auto& m : s.messages) {
    for (const auto& lp : m.logprobs()) {
      EXPECT_EQ(lp.top_size(), 2);
      ++logprobs;
    }
  }
  EXPECT_EQ(logprobs, 6);
  // Greedy is deterministic, and the Llm service shares the implementation.
  Stream again = Generate(Greedy(6), /*llm=*/true);
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.tokens(), s.tokens());
}

TEST_F(WorkerServiceTest, InvalidRequestsFailBeforeAnyMessage) {
  v1::GenerateRequest bad = Greedy(4);
  bad.mutable_sampling()->set_top_p(0.0f);
  Stream s = Generate(bad);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("top_p"));
  EXPECT_TRUE(s.messages.empty());

  v1::GenerateRequest too_long = Greedy(510);
  s = Generate(too_long);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("max_model_len 512"));

  v1::GenerateRequest model = Greedy(4);
  model.set_model("nope");
  s = Generate(model);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::GenerateRequest vocab = Greedy(4, {1, 9999});
  s = Generate(vocab);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("vocabulary"));
}

TEST_F(WorkerServiceTest, StopStringEndsTheRequestWithoutItsText) {
  v1::GenerateRequest req = Greedy(12);
  req.set_return_text(true);
  Stream full = Generate(req);
  ASSERT_TRUE(full.status.ok());
  const std::string text = full.text();
  ASSERT_GE(text.size(), 8u) << text;
  // A stop string from the middle of the greedy text.
  const std::string stop = text.substr(text.size() / 2, 3);
  const std::string expected = text.substr(0, text.find(stop));
  req.mutable_sampling()->add_stop(stop);
  Stream stopped = Generate(req);
  ASSERT_TRUE(stopped.status.ok()) << stopped.status.error_message();
  EXPECT_EQ(stopped.messages.back().finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(stopped.text(), expected);
  EXPECT_LT(stopped.tokens().size(), full.tokens().size());
}

TEST_F(WorkerServiceTest, CancelAbortsTheSequenceAndFreesItsBlocks) {
  grpc::ClientContext ctx;
  auto reader = worker_stub_->Generate(&ctx, Greedy(480));
  v1::GenerateResponse m;
  ASSERT_TRUE(reader->Read(&m));
  ctx.TryCancel();
  while (reader->Read(&m)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The abort lands within a step; poll GetLoad (bounded).
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  v1::LoadReport load = Load();
  while ((load.running() != 0 || load.kv_blocks_used() != 0) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    load = Load();
  }
  EXPECT_EQ(load.running(), 0);
  EXPECT_EQ(load.kv_blocks_used(), 0);
}

TEST_F(WorkerServiceTest, DeadlineAbortsTheSequence) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(50));
  auto reader = worker_stub_->Generate(&ctx, Greedy(510, {1}));
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
  }
  const grpc::Status st = reader->Finish();
  if (st.ok()) GTEST_SKIP() << "finished within the deadline on this machine";
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(WorkerServiceTest, GetLoadReportsTheReplica) {
  v1::LoadReport load = Load();
  EXPECT_EQ(load.worker_id(), "w-test");
  EXPECT_EQ(load.model(), replica_->model_name);
  EXPECT_EQ(load.block_size(), 16);
  EXPECT_EQ(load.kv_blocks_total(), 256);
  EXPECT_FALSE(load.draining());
}

TEST_F(WorkerServiceTest, UnavailableUntilReady) {
  ctx_.ready = false;  // as between the server's start and its worker id being known
  grpc::ClientContext load_ctx;
  v1::LoadReport load;
  const grpc::Status load_status = worker_stub_->GetLoad(&load_ctx, v1::GetLoadRequest(), &load);
  EXPECT_EQ(load_status.error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext drain_ctx;
  v1::DrainResponse drained;
  EXPECT_EQ(worker_stub_->Drain(&drain_ctx, v1::DrainRequest(), &drained).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ctx_.ready = true;
  EXPECT_EQ(Load().worker_id(), "w-test");
}

TEST_F(WorkerServiceTest, WatchKvEventsStartsWithASnapshotThenChanges) {
  grpc::ClientContext ctx;
  auto watch = worker_stub_->WatchKvEvents(&ctx, v1::WatchKvEventsRequest());
  v1::KvEventBatch b;
  ASSERT_TRUE(watch->Read(&b));
  EXPECT_TRUE(b.snapshot());
  EXPECT_EQ(b.sequence_number(), 0u);
  std::vector<int32_t> prompt(40, 77);
  ASSERT_TRUE(Generate(Greedy(2, prompt)).status.ok());
  ASSERT_TRUE(watch->Read(&b));
  EXPECT_FALSE(b.snapshot());
  EXPECT_EQ(b.sequence_number(), 1u);
  ASSERT_GE(b.events_size(), 1);
  EXPECT_EQ(b.events(0).kind(), v1::KvEvent::KIND_STORED);
  EXPECT_GE(b.events(0).block_hashes_size(), 1);
  ctx.TryCancel();
  while (watch->Read(&b)) {
  }
  watch->Finish();
}

TEST_F(WorkerServiceTest, TokenizeAndListModels) {
  grpc::ClientContext c1;
  v1::TokenizeRequest tr;
  tr.set_text("ab");
  tr.set_add_special_tokens(true);
  v1::TokenizeResponse tresp;
  ASSERT_TRUE(llm_stub_->Tokenize(&c1, tr, &tresp).ok());
  EXPECT_EQ(std::vector<int32_t>(tresp.token_ids().begin(), tresp.token_ids().end()),
            (std::vector<int32_t>{1, 'a' + 3, 'b' + 3}));
  grpc::ClientContext c2;
  v1::ListModelsResponse models;
  ASSERT_TRUE(llm_stub_->ListModels(&c2, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).id(), replica_->model_name);
  EXPECT_EQ(models.models(0).max_model_len(), 512);
}

TEST_F(WorkerServiceTest, DrainRefusesNewRequests) {
  grpc::ClientContext ctx;
  v1::DrainResponse resp;
  ASSERT_TRUE(worker_stub_->Drain(&ctx, v1::DrainRequest(), &resp).ok());
  EXPECT_EQ(resp.in_flight(), 0);
  Stream s = Generate(Greedy(4));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(), HasSubstr("draining"));
  EXPECT_TRUE(Load().draining());
}

TEST_F(WorkerServiceTest, RefusalsCarryATypedReasonForTheRouter) {
  ctx_.ready = false;
  Stream starting = Generate(Greedy(4));
  EXPECT_EQ(starting.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(api::RejectionOf(starting.status), api::Rejection::kNotReady);
  ctx_.ready = true;
  Stream admitted = Generate(Greedy(2));
  ASSERT_TRUE(admitted.status.ok()) << admitted.status.error_message();
  EXPECT_FALSE(api::RejectionOf(admitted.status).has_value());
  loop_->Drain(Clock::now() + std::chrono::seconds(30));
  Stream draining = Generate(Greedy(4));
  EXPECT_EQ(draining.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(api::RejectionOf(draining.status), api::Rejection::kDraining);
}

TEST_F(WorkerServiceTest, ManyConcurrentStreams) {
  constexpr int kClients = 12;
  std::vector<Stream> results(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { results[i] = Generate(Greedy(10 + i)); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens().size(), static_cast<size_t>(10 + i));
    EXPECT_EQ(results[i].messages.back().finish_reason(), v1::FINISH_REASON_LENGTH);
  }
}

}  // namespace
}  // namespace tessera
