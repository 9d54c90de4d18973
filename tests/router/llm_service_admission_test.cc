// The router's tessera.v1.Llm over a real channel, relaying to in-process
// fake workers: admission (queue full, queue timeout, cancel while queued),
// client cancel and deadline reaching the worker, and many concurrent streams
// with failures and cancels that all end cleanly.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class LlmServiceTest : public RouterServiceTest {
 protected:
  // One worker whose streams hang, behind a router that runs one request at a
  // time and queues up to `max_queued` for `queue_timeout`.
  void StartOneSlotRouterOverAHangingWorker(int64_t max_queued,
                                            absl::Duration queue_timeout = absl::Seconds(30)) {
    StartWorkers(1);
    GenerateScript hang;
    hang.tokens = 0;
    hang.hang = true;
    workers_[0]->SetGenerateScript(hang);
    RouterServerOptions o = FastOptions();
    o.admission.max_concurrent = 1;
    o.admission.max_queued = max_queued;
    o.admission.queue_timeout = queue_timeout;
    StartRouter(o);
  }
};

// A call started in the background (for requests that hang or queue).
struct BackgroundCall {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader;
  grpc::Status Cancel() {
    context.TryCancel();
    v1::GenerateResponse m;
    while (reader->Read(&m)) {
    }
    return reader->Finish();
  }
};

std::unique_ptr<BackgroundCall> StartCall(v1::Llm::Stub& stub, const v1::GenerateRequest& req) {
  auto call = std::make_unique<BackgroundCall>();
  call->context.set_deadline(In(absl::Seconds(30)));
  call->reader = stub.Generate(&call->context, req);
  return call;
}

TEST_F(LlmServiceTest, AdmissionRefusesWhenTheQueueIsFull) {
  StartOneSlotRouterOverAHangingWorker(0);

  auto first = StartCall(*llm_, IdsRequest({1, 2}));
  ASSERT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 1; }));
  Stream s = Generate(IdsRequest({1, 2}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.status.error_message(), HasSubstr("capacity"));
  EXPECT_EQ(first->Cancel().error_code(), grpc::StatusCode::CANCELLED);

  // The slot comes back when the stream ends.
  workers_[0]->SetGenerateScript(GenerateScript{});
  ASSERT_TRUE(Eventually([&] { return router_->admission().running() == 0; }));
  EXPECT_TRUE(Generate(IdsRequest({1, 2})).status.ok());
  v1::ClusterStatus status;
  grpc::ClientContext ctx;
  ASSERT_TRUE(admin_->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &status).ok());
  EXPECT_EQ(status.requests_rejected(), 1);
}

TEST_F(LlmServiceTest, AdmissionTimesOutAQueuedRequestAndACancelLeavesTheQueue) {
  StartOneSlotRouterOverAHangingWorker(4, absl::Milliseconds(200));

  auto first = StartCall(*llm_, IdsRequest({1, 2}));
  ASSERT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 1; }));
  Stream s = Generate(IdsRequest({1, 2}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(router_->admission().queued(), 0);
  EXPECT_EQ(first->Cancel().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(LlmServiceTest, CancellingAQueuedRequestFreesItsQueueEntry) {
  StartOneSlotRouterOverAHangingWorker(4, absl::Seconds(30));

  auto first = StartCall(*llm_, IdsRequest({1, 2}));
  ASSERT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 1; }));
  auto queued = StartCall(*llm_, IdsRequest({1, 2}));
  ASSERT_TRUE(Eventually([&] { return router_->admission().queued() == 1; }));
  EXPECT_EQ(queued->Cancel().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return router_->admission().queued() == 0; }));
  EXPECT_EQ(workers_[0]->generate_calls(), 1);  // the queued one never reached a worker
  EXPECT_EQ(first->Cancel().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return router_->admission().running() == 0; }));
}

TEST_F(LlmServiceTest, AClientCancelCancelsTheUpstreamCall) {
  StartWorkers(1);
  GenerateScript hang;
  hang.tokens = 2;
  hang.hang = true;
  workers_[0]->SetGenerateScript(hang);
  StartRouter();

  auto call = StartCall(*llm_, IdsRequest({1, 2}));
  v1::GenerateResponse m;
  ASSERT_TRUE(call->reader->Read(&m));
  ASSERT_TRUE(call->reader->Read(&m));
  EXPECT_EQ(m.token_ids(0), 101);
  ASSERT_EQ(workers_[0]->active_generates(), 1);
  EXPECT_EQ(call->Cancel().error_code(), grpc::StatusCode::CANCELLED);
  // The worker's stream ends, the lease and the slot are returned, and the
  // worker is not blamed.
  EXPECT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 0; }));
  EXPECT_TRUE(Eventually([&] { return router_->counters().in_flight.load() == 0; }));
  EXPECT_TRUE(Eventually([&] { return router_->pool().Get("w0")->in_flight() == 0; }));
  EXPECT_EQ(router_->pool().Get("w0")->consecutive_failures(), 0);
  EXPECT_EQ(router_->counters().failed.load(), 0);
}

TEST_F(LlmServiceTest, TheClientDeadlineReachesTheWorker) {
  StartWorkers(1);
  GenerateScript hang;
  hang.tokens = 1;
  hang.hang = true;
  workers_[0]->SetGenerateScript(hang);
  StartRouter();
  Stream s = Generate(IdsRequest({1, 2}), [](grpc::ClientContext& ctx) {
    ctx.set_deadline(In(absl::Milliseconds(300)));
  });
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 0; }));
  EXPECT_TRUE(Eventually([&] { return router_->counters().in_flight.load() == 0; }));
  EXPECT_EQ(TotalGenerateCalls(), 1);
}

// Many concurrent streams over a healthy worker, one that fails before any
// token and one that fails after some, with clients cancelling part way:
// every stream ends the way its worker and client decided, and every slot,
// lease and counter comes back.
TEST_F(LlmServiceTest, ConcurrentStreamsWithFailuresAndCancelsAllEndCleanly) {
  StartWorkers(3);
  GenerateScript ok;
  ok.tokens = 12;
  workers_[0]->SetGenerateScript(ok);
  GenerateScript early;
  early.fail_after_messages = 0;
  workers_[1]->SetGenerateScript(early);
  GenerateScript late;
  late.tokens = 12;
  late.fail_after_messages = 3;
  workers_[2]->SetGenerateScript(late);
  RouterServerOptions o = FastOptions("round_robin");
  o.pool.breaker.failure_threshold = 1000;
  o.admission.max_concurrent = 4;  // most requests queue
  o.admission.max_queued = 1000;
  StartRouter(o);

  constexpr int kThreads = 8;
  constexpr int kPerThread = 6;
  std::atomic<int> unexpected{0};
  std::atomic<int> completed{0};
  std::atomic<int> cut{0};
  std::atomic<int> cancelled{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const bool cancel = (t + i) % 3 == 0;
        grpc::ClientContext ctx;
        ctx.set_deadline(In(absl::Seconds(20)));
        auto reader = llm_->Generate(&ctx, IdsRequest({1, 2, 3}));
        v1::GenerateResponse m;
        int messages = 0;
        while (reader->Read(&m)) {
          if (++messages == 1 && cancel) ctx.TryCancel();
        }
        const grpc::Status s = reader->Finish();
        if (cancel && (s.error_code() == grpc::StatusCode::CANCELLED || s.ok())) {
          ++cancelled;  // (OK when the stream had ended before the cancel)
        } else if (s.ok() && messages == 13) {
          ++completed;
        } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE &&
                   s.error_message().find("tokens were delivered") != std::string::npos) {
          ++cut;
        } else {
          ++unexpected;
          ADD_FAILURE() << "stream " << t << "/" << i << ": " << s.error_code() << " "
                        << s.error_message() << " after " << messages << " messages";
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(completed + cut + cancelled, kThreads * kPerThread);
  EXPECT_GT(completed.load(), 0);
  EXPECT_TRUE(Eventually([&] { return router_->counters().in_flight.load() == 0; }));
  EXPECT_TRUE(Eventually(
      [&] { return router_->admission().running() == 0 && router_->admission().queued() == 0; }));
  for (const char* id : {"w0", "w1", "w2"}) {
    EXPECT_TRUE(Eventually([&] { return router_->pool().Get(id)->in_flight() == 0; })) << id;
  }
  for (const auto& w : workers_) {
    EXPECT_TRUE(Eventually([&] { return w->active_generates() == 0; }));
  }
  EXPECT_EQ(router_->counters().total.load(), kThreads * kPerThread);
}

}  // namespace
}  // namespace tessera::router::testing
