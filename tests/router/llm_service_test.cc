// The router's tessera.v1.Llm over a real channel, relaying to in-process
// fake workers: the relayed stream, text prompts tokenized at the router,
// validation before placement, failover before the first token, failures
// after tokens, client errors passed through, ListModels / Tokenize, and the
// --api-key check. Admission, cancels and deadlines:
// llm_service_admission_test.cc.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using LlmServiceTest = RouterServiceTest;

TEST_F(LlmServiceTest, RelaysTokensInOrderAndTheFinalUsage) {
  StartWorkers(1);
  GenerateScript script;
  script.tokens = 40;
  workers_[0]->SetGenerateScript(script);
  StartRouter();

  Stream s = Generate(IdsRequest({1, 5, 6, 7}));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  std::vector<int32_t> expected;
  for (int i = 0; i < 40; ++i) expected.push_back(100 + i);
  EXPECT_EQ(s.tokens(), expected);
  ASSERT_EQ(s.messages.size(), 41u);
  const v1::GenerateResponse& last = s.messages.back();
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.usage().prompt_tokens(), 4);
  EXPECT_EQ(last.usage().completion_tokens(), 40);
  EXPECT_EQ(last.worker_id(), "w0");
  // The router generated the request id and the worker got the prompt as is.
  EXPECT_THAT(last.request_id(), StartsWith("rt-"));
  std::optional<v1::GenerateRequest> seen = workers_[0]->last_request();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->request_id(), last.request_id());
  EXPECT_THAT(seen->token_ids().ids(), ElementsAre(1, 5, 6, 7));
  EXPECT_EQ(seen->sampling().max_tokens(), 8);

  // A client's own request id is its label: the worker gets the router's
  // random id, the client sees its own; generated ids are unique.
  v1::GenerateRequest mine = IdsRequest({1, 2});
  mine.set_request_id("client-7");
  Stream s2 = Generate(mine);
  ASSERT_TRUE(s2.status.ok());
  EXPECT_EQ(s2.messages.back().request_id(), "client-7");
  EXPECT_THAT(workers_[0]->last_request()->request_id(), StartsWith("rt-"));
  Stream s3 = Generate(IdsRequest({1, 2}));
  ASSERT_TRUE(s3.status.ok());
  EXPECT_NE(workers_[0]->last_request()->request_id(), last.request_id());

  v1::ClusterStatus status;
  grpc::ClientContext ctx;
  ASSERT_TRUE(admin_->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &status).ok());
  EXPECT_EQ(status.requests_total(), 3);
  EXPECT_EQ(status.requests_failed(), 0);
  EXPECT_EQ(status.requests_retried(), 0);
  EXPECT_TRUE(Eventually([&] { return router_->counters().in_flight.load() == 0; }));
}

TEST_F(LlmServiceTest, TextPromptsAreTokenizedAtTheRouterWithBos) {
  StartWorkers(1);
  StartRouter();
  v1::GenerateRequest req;
  req.set_text("hi!");
  Stream s = Generate(req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  std::optional<v1::GenerateRequest> seen = workers_[0]->last_request();
  ASSERT_TRUE(seen.has_value());
  ASSERT_EQ(seen->prompt_case(), v1::GenerateRequest::kTokenIds);
  // The byte tokenizer: BOS = 1, byte b = b + 3.
  EXPECT_THAT(seen->token_ids().ids(), ElementsAre(1, 'h' + 3, 'i' + 3, '!' + 3));
  EXPECT_EQ(s.messages.back().usage().prompt_tokens(), 4);
}

TEST_F(LlmServiceTest, InvalidRequestsAreRefusedBeforePlacementNamingTheField) {
  FakeWorkerOptions fw;
  fw.max_model_len = 64;
  fw.vocab_size = 512;
  StartWorkers(1, fw);
  StartRouter();

  struct Case {
    v1::GenerateRequest request;
    grpc::StatusCode code;
    std::vector<std::string> parts;
  };
  std::vector<Case> cases;
  {
    v1::GenerateRequest r = IdsRequest({1, 2}, 0);
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, {"max_tokens", "at least 1"}});
  }
  {
    v1::GenerateRequest r = IdsRequest({1, 600});
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, {"token_ids[1]", "512"}});
  }
  {
    v1::GenerateRequest r = IdsRequest(std::vector<int32_t>(60, 7), 10);
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, {"max_tokens", "max_model_len 64"}});
  }
  {
    v1::GenerateRequest r = IdsRequest({1, 2});
    r.mutable_sampling()->set_top_p(0.0f);
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, {"top_p"}});
  }
  {
    v1::GenerateRequest r;
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, {"prompt"}});
  }
  {
    v1::GenerateRequest r;
    r.set_text("");
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, {"text is empty"}});
  }
  {
    v1::GenerateRequest r = IdsRequest({1, 2});
    r.set_model("no-such-model");
    cases.push_back({r, grpc::StatusCode::NOT_FOUND, {"no-such-model", "fake"}});
  }
  for (const Case& c : cases) {
    Stream s = Generate(c.request);
    EXPECT_EQ(s.status.error_code(), c.code) << s.status.error_message();
    EXPECT_TRUE(s.messages.empty());
    for (const std::string& p : c.parts) EXPECT_THAT(s.status.error_message(), HasSubstr(p));
  }
  EXPECT_EQ(workers_[0]->generate_calls(), 0);

  // The served model by name is fine.
  v1::GenerateRequest ok = IdsRequest({1, 2});
  ok.set_model("fake");
  EXPECT_TRUE(Generate(ok).status.ok());
}

TEST_F(LlmServiceTest, AWorkerFailingBeforeAnyTokenIsRetriedElsewhere) {
  StartWorkers(2);
  GenerateScript failing;
  failing.fail_after_messages = 0;
  failing.fail_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker exploded");
  workers_[0]->SetGenerateScript(failing);
  RouterServerOptions o = FastOptions("round_robin");
  o.pool.breaker.failure_threshold = 100;  // keep w0 in rotation
  StartRouter(o);

  for (int i = 0; i < 4; ++i) {
    Stream s = Generate(IdsRequest({1, 2, 3}));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_THAT(s.tokens(), ElementsAre(100, 101, 102, 103));
    EXPECT_EQ(s.messages.back().worker_id(), "w1");
    EXPECT_EQ(s.messages.back().finish_reason(), v1::FINISH_REASON_LENGTH);
  }
  // Round robin sent some of them to w0 first; each of those was retried.
  EXPECT_GE(workers_[0]->generate_calls(), 1);
  EXPECT_EQ(workers_[1]->generate_calls(), 4);
  EXPECT_EQ(router_->counters().retried.load(), workers_[0]->generate_calls());
  EXPECT_EQ(router_->counters().failed.load(), 0);
  // The failures reached w0's breaker count.
  std::optional<v1::WorkerInfo> w0 = router_->pool().Get("w0");
  ASSERT_TRUE(w0.has_value());
  EXPECT_GE(w0->consecutive_failures(), 1);
}

TEST_F(LlmServiceTest, AWorkerRefusingTheRequestIsRetriedElsewhere) {
  StartWorkers(2);
  GenerateScript full;
  full.fail_after_messages = 0;
  full.fail_status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
  workers_[0]->SetGenerateScript(full);
  StartRouter(FastOptions("round_robin"));
  for (int i = 0; i < 3; ++i) {
    Stream s = Generate(IdsRequest({1, 2, 3}));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.messages.back().worker_id(), "w1");
  }
  EXPECT_GE(workers_[0]->generate_calls(), 1);
  // A refusal is not a failure for the breaker.
  EXPECT_EQ(router_->pool().Get("w0")->consecutive_failures(), 0);
}

TEST_F(LlmServiceTest, AFailureAfterTokensEndsTheStreamWithUnavailableAndTheCount) {
  StartWorkers(2);
  GenerateScript script;
  script.tokens = 4;
  script.fail_after_messages = 2;
  script.fail_status = grpc::Status(grpc::StatusCode::INTERNAL, "boom");
  for (auto& w : workers_) w->SetGenerateScript(script);
  RouterServerOptions o = FastOptions();
  o.relay.max_failovers = 0;  // continuations: tests/router/relay_continuation_test.cc
  StartRouter(o);

  Stream s = Generate(IdsRequest({1, 2, 3}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(), HasSubstr("failed after 2 tokens were delivered"));
  EXPECT_THAT(s.status.error_message(), HasSubstr("boom"));
  const std::string worker = s.messages.empty() ? "" : s.messages[0].worker_id();
  EXPECT_THAT(s.status.error_message(), HasSubstr("worker " + worker + " failed"));
  EXPECT_THAT(s.tokens(), ElementsAre(100, 101));
  EXPECT_EQ(TotalGenerateCalls(), 1);  // never retried once tokens were out
  EXPECT_EQ(router_->counters().failed.load(), 1);
}

TEST_F(LlmServiceTest, ClientErrorsFromTheWorkerPassThroughWithoutRetry) {
  StartWorkers(2);
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::FAILED_PRECONDITION,
        grpc::StatusCode::OUT_OF_RANGE, grpc::StatusCode::NOT_FOUND}) {
    GenerateScript script;
    script.fail_after_messages = 0;
    script.fail_status = grpc::Status(code, "the worker says no");
    for (auto& w : workers_) w->SetGenerateScript(script);
    if (!router_) StartRouter();
    const int64_t before = TotalGenerateCalls();
    Stream s = Generate(IdsRequest({1, 2, 3}));
    EXPECT_EQ(s.status.error_code(), code);
    EXPECT_EQ(s.status.error_message(), "the worker says no");
    EXPECT_EQ(TotalGenerateCalls(), before + 1);
  }
  EXPECT_EQ(router_->counters().retried.load(), 0);
  EXPECT_EQ(router_->pool().Get("w0")->consecutive_failures(), 0);
  EXPECT_EQ(router_->pool().Get("w1")->consecutive_failures(), 0);
}

TEST_F(LlmServiceTest, GivesUpAfterMaxAttempts) {
  StartWorkers(3);
  GenerateScript failing;
  failing.fail_after_messages = 0;
  failing.fail_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  for (auto& w : workers_) w->SetGenerateScript(failing);
  RouterServerOptions o = FastOptions();
  o.relay.max_attempts = 2;
  o.pool.breaker.failure_threshold = 100;
  StartRouter(o);
  Stream s = Generate(IdsRequest({1, 2, 3}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(), HasSubstr("all 2 attempts failed"));
  EXPECT_THAT(s.status.error_message(), HasSubstr("down"));
  EXPECT_EQ(TotalGenerateCalls(), 2);
}

TEST_F(LlmServiceTest, RunsOutOfWorkersToRetryOn) {
  StartWorkers(1);
  GenerateScript failing;
  failing.fail_after_messages = 0;
  failing.fail_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  workers_[0]->SetGenerateScript(failing);
  StartRouter();
  Stream s = Generate(IdsRequest({1, 2, 3}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(), HasSubstr("worker w0"));
  EXPECT_THAT(s.status.error_message(), HasSubstr("no other worker to retry on"));
  EXPECT_EQ(TotalGenerateCalls(), 1);
}

TEST_F(LlmServiceTest, ListModelsAndTokenizeAnswerFromTheServedModel) {
  FakeWorkerOptions fw;
  fw.model = "tiny-model";
  fw.vocab_size = 300;
  fw.max_model_len = 128;
  StartWorkers(1, fw);
  StartRouter();

  grpc::ClientContext c1;
  v1::ListModelsResponse models;
  ASSERT_TRUE(llm_->ListModels(&c1, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).id(), "tiny-model");
  EXPECT_EQ(models.models(0).vocab_size(), 300);
  EXPECT_EQ(models.models(0).max_model_len(), 128);

  grpc::ClientContext c2;
  v1::TokenizeRequest tr;
  tr.set_text("ab");
  tr.set_add_special_tokens(true);
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(llm_->Tokenize(&c2, tr, &tokens).ok());
  EXPECT_THAT(tokens.token_ids(), ElementsAre(1, 'a' + 3, 'b' + 3));

  grpc::ClientContext c3;
  tr.set_model("other");
  EXPECT_EQ(llm_->Tokenize(&c3, tr, &tokens).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(LlmServiceTest, WithoutAWorkerTheModelIsUnknown) {
  StartRouter();
  grpc::ClientContext c1;
  v1::ListModelsResponse models;
  grpc::Status s = llm_->ListModels(&c1, v1::ListModelsRequest(), &models);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("no worker has reported its model yet"));
  grpc::ClientContext c2;
  v1::TokenizeResponse tokens;
  EXPECT_EQ(llm_->Tokenize(&c2, v1::TokenizeRequest(), &tokens).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Generate(IdsRequest({1, 2})).status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

// The Registry is the cluster credential's (integration_cluster_auth_test),
// not the client API key's: with no --cluster-token it takes loopback calls.
TEST_F(LlmServiceTest, TheApiKeyGuardsLlmButNotRegistryOrHealth) {
  StartWorkers(1);
  RouterServerOptions o = FastOptions();
  o.api_key = "sesame";
  StartRouter(o);
  auto with = [](const std::string& value) {
    return [value](grpc::ClientContext& ctx) { ctx.AddMetadata("authorization", value); };
  };

  Stream none = Generate(IdsRequest({1, 2}));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  Stream wrong = Generate(IdsRequest({1, 2}), with("Bearer sesame2"));
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  Stream scheme = Generate(IdsRequest({1, 2}), with("sesame"));
  EXPECT_EQ(scheme.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(workers_[0]->generate_calls(), 0);
  Stream right = Generate(IdsRequest({1, 2}), with("Bearer sesame"));
  EXPECT_TRUE(right.status.ok()) << right.status.error_message();

  grpc::ClientContext c1;
  v1::ListModelsResponse models;
  EXPECT_EQ(llm_->ListModels(&c1, v1::ListModelsRequest(), &models).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext c2;
  c2.AddMetadata("authorization", "Bearer sesame");
  EXPECT_TRUE(llm_->ListModels(&c2, v1::ListModelsRequest(), &models).ok());

  grpc::ClientContext c3;
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w0");
  v1::HeartbeatResponse hr;
  const grpc::Status heartbeat = registry_->Heartbeat(&c3, hb, &hr);
  EXPECT_TRUE(heartbeat.ok()) << heartbeat.error_message();

  EXPECT_EQ(CheckHealth(channel_), 1);
  EXPECT_EQ(CheckHealth(channel_, "tessera.v1.Llm"), 1);
}

}  // namespace
}  // namespace tessera::router::testing
