// The fake worker used by the router tests: its scripted Generate, GetLoad,
// ListModels, WatchKvEvents (snapshot, ordered batches, gaps), Drain, and
// Stop/Restart, seen through a real gRPC channel.
#include "tests/router/fake_worker.h"

#include <chrono>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::router::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Polls `pred` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return pred();
}

std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

struct Stream {
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status;
  std::vector<int32_t> tokens() const {
    std::vector<int32_t> t;
    for (const auto& m : messages) t.insert(t.end(), m.token_ids().begin(), m.token_ids().end());
    return t;
  }
};

Stream Generate(v1::Worker::Stub& stub, const std::string& request_id = "r1") {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  v1::GenerateRequest req;
  req.set_request_id(request_id);
  req.mutable_token_ids()->add_ids(1);
  req.mutable_token_ids()->add_ids(2);
  auto reader = stub.Generate(&ctx, req);
  Stream s;
  v1::GenerateResponse m;
  while (reader->Read(&m)) s.messages.push_back(m);
  s.status = reader->Finish();
  return s;
}

class FakeWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    channel_ = grpc::CreateChannel(fake_.address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Worker::NewStub(channel_);
  }
  FakeWorker fake_{FakeWorkerOptions{.worker_id = "fw1"}};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Worker::Stub> stub_;
};

TEST_F(FakeWorkerTest, GenerateSendsOneMessagePerTokenThenTheFinal) {
  Stream s = Generate(*stub_);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_EQ(s.messages.size(), 5u);
  EXPECT_THAT(s.tokens(), ElementsAre(100, 101, 102, 103));
  EXPECT_EQ(s.messages[0].worker_id(), "fw1");
  EXPECT_EQ(s.messages[0].request_id(), "r1");
  EXPECT_EQ(s.messages.back().finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(s.messages.back().usage().prompt_tokens(), 2);
  EXPECT_EQ(s.messages.back().usage().completion_tokens(), 4);
  EXPECT_EQ(fake_.generate_calls(), 1);
  ASSERT_TRUE(fake_.last_request().has_value());
  EXPECT_EQ(fake_.last_request()->request_id(), "r1");
}

TEST_F(FakeWorkerTest, GenerateFailsAfterScriptedMessages) {
  fake_.SetGenerateScript({.tokens = 3, .fail_after_messages = 2});
  Stream s = Generate(*stub_);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.tokens(), ElementsAre(100, 101));

  fake_.SetGenerateScript(
      {.fail_after_messages = 0,
       .fail_status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "full")});
  s = Generate(*stub_);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(s.messages.empty());
}

TEST_F(FakeWorkerTest, HangingGenerateEndsOnCancelAndOnStop) {
  fake_.SetGenerateScript({.tokens = 1, .hang = true});
  {
    grpc::ClientContext ctx;
    v1::GenerateRequest req;
    auto reader = stub_->Generate(&ctx, req);
    v1::GenerateResponse m;
    ASSERT_TRUE(reader->Read(&m));
    EXPECT_THAT(m.token_ids(), ElementsAre(100));
    EXPECT_EQ(fake_.active_generates(), 1);
    ctx.TryCancel();
    while (reader->Read(&m)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_TRUE(Eventually([&] { return fake_.active_generates() == 0; }));
  }
  // Stop() ends a hanging stream with UNAVAILABLE.
  grpc::ClientContext ctx;
  v1::GenerateRequest req;
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse m;
  ASSERT_TRUE(reader->Read(&m));
  std::thread stopper([&] { fake_.Stop(); });
  while (reader->Read(&m)) {
  }
  const grpc::Status status = reader->Finish();
  stopper.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_FALSE(fake_.running());
}

TEST_F(FakeWorkerTest, GetLoadReportsTheSetLoadAndScriptedFailures) {
  v1::LoadReport r;
  r.set_running(3);
  r.set_waiting(2);
  fake_.SetLoad(r);
  grpc::ClientContext ctx;
  v1::LoadReport got;
  ASSERT_TRUE(stub_->GetLoad(&ctx, v1::GetLoadRequest(), &got).ok());
  EXPECT_EQ(got.worker_id(), "fw1");
  EXPECT_EQ(got.running(), 3);
  EXPECT_EQ(got.waiting(), 2);
  EXPECT_EQ(got.block_size(), 16);
  EXPECT_EQ(got.model(), "fake");

  fake_.SetGetLoadStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting"));
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->GetLoad(&ctx2, v1::GetLoadRequest(), &got).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  fake_.SetGetLoadStatus(grpc::Status::OK);
  fake_.SetGetLoadHang(true);
  grpc::ClientContext ctx3;
  ctx3.set_deadline(In(absl::Milliseconds(100)));
  EXPECT_EQ(stub_->GetLoad(&ctx3, v1::GetLoadRequest(), &got).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(fake_.get_load_calls(), 3);
}

TEST_F(FakeWorkerTest, ListModelsAndDrain) {
  auto llm = v1::Llm::NewStub(channel_);
  grpc::ClientContext ctx;
  v1::ListModelsResponse models;
  ASSERT_TRUE(llm->ListModels(&ctx, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).id(), "fake");
  EXPECT_EQ(models.models(0).max_model_len(), 2048);
  EXPECT_EQ(models.models(0).vocab_size(), 512);

  grpc::ClientContext dctx;
  v1::DrainResponse drained;
  ASSERT_TRUE(stub_->Drain(&dctx, v1::DrainRequest(), &drained).ok());
  EXPECT_EQ(fake_.drain_calls(), 1);
  grpc::ClientContext lctx;
  v1::LoadReport load;
  ASSERT_TRUE(stub_->GetLoad(&lctx, v1::GetLoadRequest(), &load).ok());
  EXPECT_TRUE(load.draining());
}

v1::KvEventBatch Stored(std::initializer_list<uint64_t> hashes) {
  v1::KvEventBatch b;
  v1::KvEvent* e = b.add_events();
  e->set_kind(v1::KvEvent::KIND_STORED);
  for (uint64_t h : hashes) e->add_block_hashes(h);
  return b;
}

TEST_F(FakeWorkerTest, WatchGetsSnapshotThenNumberedBatchesAndGaps) {
  fake_.PushKvEvents(Stored({1, 2}));  // before any watcher: only in the snapshot
  grpc::ClientContext ctx;
  auto reader = stub_->WatchKvEvents(&ctx, v1::WatchKvEventsRequest());
  v1::KvEventBatch b;
  ASSERT_TRUE(reader->Read(&b));
  EXPECT_TRUE(b.snapshot());
  EXPECT_EQ(b.sequence_number(), 0u);
  ASSERT_EQ(b.events_size(), 1);
  EXPECT_THAT(b.events(0).block_hashes(), ElementsAre(1, 2));
  ASSERT_TRUE(Eventually([&] { return fake_.kv_watchers() == 1; }));

  fake_.PushKvEvents(Stored({3}));
  ASSERT_TRUE(reader->Read(&b));
  EXPECT_FALSE(b.snapshot());
  EXPECT_EQ(b.sequence_number(), 1u);
  EXPECT_EQ(b.block_size(), 16);

  fake_.SkipKvSequenceNumbers(2);
  fake_.PushKvEvents(Stored({4}));
  ASSERT_TRUE(reader->Read(&b));
  EXPECT_EQ(b.sequence_number(), 4u);

  ctx.TryCancel();
  while (reader->Read(&b)) {
  }
  reader->Finish();
  EXPECT_TRUE(Eventually([&] { return fake_.kv_watchers() == 0; }));
  EXPECT_EQ(fake_.watch_calls(), 1);
}

TEST_F(FakeWorkerTest, RestartServesOnTheSamePortWithTheSameState) {
  fake_.PushKvEvents(Stored({7}));
  const std::string address = fake_.address();
  fake_.Stop();
  fake_.Stop();  // idempotent
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Milliseconds(300)));
    v1::LoadReport got;
    EXPECT_FALSE(stub_->GetLoad(&ctx, v1::GetLoadRequest(), &got).ok());
  }
  ASSERT_TRUE(fake_.Restart().ok());
  EXPECT_EQ(fake_.address(), address);
  EXPECT_TRUE(fake_.running());
  // A fresh channel with its own subchannels connects at once (the shared
  // ones may be in reconnect backoff after the refused connection).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::Worker::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  ctx.set_wait_for_ready(true);
  auto reader = stub->WatchKvEvents(&ctx, v1::WatchKvEventsRequest());
  v1::KvEventBatch b;
  ASSERT_TRUE(reader->Read(&b));
  EXPECT_THAT(b.events(0).block_hashes(), ElementsAre(7));
  ctx.TryCancel();
  while (reader->Read(&b)) {
  }
  reader->Finish();
}

}  // namespace
}  // namespace tessera::router::testing
