// The relay's pieces: how an attempt's end is classified (AttemptEnd), the
// backoff policy, and, through a router over fake workers, that a worker's
// refusal is recognised by its typed reason (common/api/rejection.h) and not
// by the words of its message.
#include "absl/status/status.h"
#include "common/api/grpc_status.h"
#include "common/api/rejection.h"
#include "gtest/gtest.h"
#include "router/retry_policy.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

grpc::Status Rejected(grpc::StatusCode code, const std::string& message, api::Rejection why) {
  return api::ToGrpcStatus(
      api::WithRejection(absl::Status(static_cast<absl::StatusCode>(code), message), why));
}

AttemptFacts Ended(grpc::Status status, bool saw_final = false) {
  AttemptFacts f;
  f.status = std::move(status);
  f.saw_final = saw_final;
  return f;
}

TEST(ClassifyAttemptEnd, ACompleteStreamIsCompleted) {
  EXPECT_EQ(ClassifyAttemptEnd(Ended(grpc::Status::OK, /*saw_final=*/true)),
            AttemptEnd::kCompleted);
}

TEST(ClassifyAttemptEnd, AnOkStreamWithoutItsFinalMessageIsAWorkerError) {
  EXPECT_EQ(ClassifyAttemptEnd(Ended(grpc::Status::OK)), AttemptEnd::kWorkerError);
}

TEST(ClassifyAttemptEnd, ClientErrorsPassThrough) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::NOT_FOUND,
        grpc::StatusCode::OUT_OF_RANGE, grpc::StatusCode::FAILED_PRECONDITION,
        grpc::StatusCode::ALREADY_EXISTS}) {
    EXPECT_EQ(ClassifyAttemptEnd(Ended(grpc::Status(code, "no"))), AttemptEnd::kClientError)
        << api::StatusCodeName(code);
  }
}

TEST(ClassifyAttemptEnd, TheClientLeavingSaysNothingAboutTheWorker) {
  AttemptFacts cancelled = Ended(grpc::Status(grpc::StatusCode::CANCELLED, "gone"));
  cancelled.client_cancelled = true;
  EXPECT_EQ(ClassifyAttemptEnd(cancelled), AttemptEnd::kCancelled);
  AttemptFacts late = Ended(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late"));
  late.client_deadline_passed = true;
  EXPECT_EQ(ClassifyAttemptEnd(late), AttemptEnd::kCancelled);
  // A deadline the worker hit before the client's is the worker's failure.
  EXPECT_EQ(ClassifyAttemptEnd(Ended(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow"))),
            AttemptEnd::kWorkerError);
}

TEST(ClassifyAttemptEnd, ARejectionIsKnownByItsReasonNotItsWords) {
  for (api::Rejection why : {api::Rejection::kDraining, api::Rejection::kShuttingDown,
                             api::Rejection::kNotReady, api::Rejection::kQueueFull}) {
    for (const std::string message :
         {"the worker is draining: it accepts no new requests", "bitte woanders versuchen", ""}) {
      EXPECT_EQ(ClassifyAttemptEnd(Ended(Rejected(grpc::StatusCode::UNAVAILABLE, message, why))),
                AttemptEnd::kRejected)
          << api::RejectionReason(why) << " / " << message;
    }
  }
  // The old words without the typed reason are just a failure.
  EXPECT_EQ(ClassifyAttemptEnd(
                Ended(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the worker is draining"))),
            AttemptEnd::kWorkerError);
  EXPECT_EQ(ClassifyAttemptEnd(
                Ended(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the worker is shutting down"))),
            AttemptEnd::kWorkerError);
  // A full queue is a refusal by its code alone.
  EXPECT_EQ(ClassifyAttemptEnd(Ended(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "full"))),
            AttemptEnd::kRejected);
}

TEST(ClassifyAttemptEnd, ErrorDetailsThatAreNotTesserasAreIgnored) {
  const grpc::Status garbage(grpc::StatusCode::UNAVAILABLE, "down", "\xff\x01not a proto");
  EXPECT_EQ(ClassifyAttemptEnd(Ended(garbage)), AttemptEnd::kWorkerError);
}

TEST(BackoffPolicy, DoublesFromTheBaseUpToTheCapTimesTheJitter) {
  BackoffPolicy p;
  p.max_attempts = 10;
  p.base = absl::Milliseconds(20);
  p.max = absl::Milliseconds(100);
  EXPECT_EQ(p.Delay(1, 1.0), absl::Milliseconds(20));
  EXPECT_EQ(p.Delay(2, 1.0), absl::Milliseconds(40));
  EXPECT_EQ(p.Delay(3, 1.0), absl::Milliseconds(80));
  EXPECT_EQ(p.Delay(4, 1.0), absl::Milliseconds(100));
  EXPECT_EQ(p.Delay(60, 1.0), absl::Milliseconds(100));  // no overflow however many
  EXPECT_EQ(p.Delay(2, 0.5), absl::Milliseconds(20));
  EXPECT_EQ(p.Delay(2, 1.5), absl::Milliseconds(60));
}

TEST(BackoffPolicy, RetriesUntilMaxAttempts) {
  BackoffPolicy p;
  p.max_attempts = 3;
  EXPECT_TRUE(p.MayRetry(1));
  EXPECT_TRUE(p.MayRetry(2));
  EXPECT_FALSE(p.MayRetry(3));
  p.max_attempts = 1;
  EXPECT_FALSE(p.MayRetry(1));
}

TEST(Rejection, SurvivesTheTripThroughGrpcAndBack) {
  const absl::Status s =
      api::WithRejection(absl::UnavailableError("any words"), api::Rejection::kShuttingDown);
  const grpc::Status wire = api::ToGrpcStatus(s);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(wire.error_message(), "any words");
  EXPECT_EQ(api::RejectionOf(wire), api::Rejection::kShuttingDown);
  EXPECT_EQ(api::RejectionOf(api::FromGrpcStatus(wire)), api::Rejection::kShuttingDown);
  EXPECT_FALSE(api::RejectionOf(api::ToGrpcStatus(absl::UnavailableError("x"))).has_value());
}

class RelayRejectionTest : public RouterServiceTest {};

TEST_F(RelayRejectionTest, ATypedRefusalIsRetriedElsewhereAndNotCountedWhateverItsMessage) {
  StartWorkers(2);
  GenerateScript refuse;
  refuse.fail_after_messages = 0;
  refuse.fail_status = Rejected(grpc::StatusCode::UNAVAILABLE, "reworded: come back later",
                                api::Rejection::kDraining);
  workers_[0]->SetGenerateScript(refuse);
  StartRouter(FastOptions("round_robin"));
  for (int i = 0; i < 3; ++i) {
    Stream s = Generate(IdsRequest({1, 2, 3}));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.messages.back().worker_id(), "w1");
  }
  EXPECT_GE(workers_[0]->generate_calls(), 1);
  EXPECT_EQ(router_->pool().Get("w0")->consecutive_failures(), 0);
}

TEST_F(RelayRejectionTest, TheOldWordsWithoutTheReasonCountAsAFailure) {
  StartWorkers(2);
  GenerateScript refuse;
  refuse.fail_after_messages = 0;
  refuse.fail_status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "the worker is draining: it accepts no new requests");
  workers_[0]->SetGenerateScript(refuse);
  StartRouter(FastOptions("round_robin"));
  for (int i = 0; i < 3; ++i) {
    Stream s = Generate(IdsRequest({1, 2, 3}));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();  // still retried elsewhere
    EXPECT_EQ(s.messages.back().worker_id(), "w1");
  }
  EXPECT_GE(workers_[0]->generate_calls(), 1);
  EXPECT_GE(router_->pool().Get("w0")->consecutive_failures(), 1);
}

}  // namespace
}  // namespace tessera::router::testing
