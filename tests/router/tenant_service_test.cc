// Tenants through the router's gRPC Llm service, in-process against fake
// workers: keys name tenants (unknown keys are refused), a tenant's
// concurrency and tokens-per-minute limits answer RESOURCE_EXHAUSTED with a
// message naming the limit and trailing metadata `retry-after`, the
// admission queue's overload carries `retry-after` too, `priority` is
// clamped to the tenant's max_priority, `user` names a tenant only with
// --user-tenants, and the tenant metrics count it all; over the HTTP API a
// limit is 429 with Retry-After.
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/http_test_util.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kChatKey[] = "sk-chat-000001";
constexpr char kBatchKey[] = "sk-batch-00001";

KeyedTenant Keyed(const std::string& name, const std::string& key) {
  KeyedTenant k;
  k.key = key;
  k.policy.name = name;
  return k;
}

std::function<void(grpc::ClientContext&)> WithKey(const std::string& key) {
  return [key](grpc::ClientContext& ctx) { ctx.AddMetadata("authorization", "Bearer " + key); };
}

// The `retry-after` trailing metadata of a finished call ("" when absent).
std::string RetryAfterOf(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("retry-after");
  return it == trailers.end() ? "" : std::string(it->second.data(), it->second.size());
}

class TenantServiceTest : public RouterServiceTest {
 protected:
  // A stream held open by the worker (GenerateScript::hang) until cancelled.
  struct Held {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader;
  };
  std::unique_ptr<Held> Hold(const std::string& key) {
    auto h = std::make_unique<Held>();
    h->ctx.set_deadline(In(absl::Seconds(30)));
    h->ctx.AddMetadata("authorization", "Bearer " + key);
    h->reader = llm_->Generate(&h->ctx, IdsRequest({1, 2, 3}, 4));
    return h;
  }
  // One worker answering 10 tokens, tenant "batch" limited to 60 tokens per
  // minute (one per second).
  void StartTokensPerMinuteRouter() {
    StartWorkers(1);
    workers_[0]->SetGenerateScript({.tokens = 10});
    RouterServerOptions o = FastOptions();
    o.api_keys = {Keyed("batch", kBatchKey)};
    o.api_keys[0].policy.tokens_per_minute = 60;
    StartRouter(o);
  }
  void Release(std::unique_ptr<Held> h) {
    h->ctx.TryCancel();
    v1::GenerateResponse m;
    while (h->reader->Read(&m)) {
    }
    h->reader->Finish();
  }
};

TEST_F(TenantServiceTest, ConcurrencyLimitIsRefusedWithTheLimitAndRetryAfter) {
  StartWorkers(1);
  workers_[0]->SetGenerateScript({.tokens = 1, .hang = true});
  RouterServerOptions o = FastOptions();
  o.api_keys = {Keyed("chat", kChatKey), Keyed("batch", kBatchKey)};
  o.api_keys[1].policy.max_concurrent_requests = 1;
  StartRouter(o);

  std::unique_ptr<Held> held = Hold(kBatchKey);
  ASSERT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 1; }));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  ctx.AddMetadata("authorization", std::string("Bearer ") + kBatchKey);
  auto reader = llm_->Generate(&ctx, IdsRequest({1, 2, 3}, 4));
  v1::GenerateResponse m;
  EXPECT_FALSE(reader->Read(&m));
  const grpc::Status refused = reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("tenant batch"));
  EXPECT_THAT(refused.error_message(), HasSubstr("max_concurrent_requests 1"));
  EXPECT_EQ(RetryAfterOf(ctx), "1");
  EXPECT_EQ(workers_[0]->generate_calls(), 1);  // the refused one never reached a worker

  // Another tenant is not affected; an unknown key is not a tenant.
  workers_[0]->SetGenerateScript({.tokens = 2});
  EXPECT_TRUE(Generate(IdsRequest({1, 2}, 2), WithKey(kChatKey)).status.ok());
  EXPECT_EQ(Generate(IdsRequest({1, 2}, 2), WithKey("sk-nobody-00001")).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(IdsRequest({1, 2}, 2)).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  Release(std::move(held));
  ASSERT_TRUE(Eventually([&] { return router_->tenants().in_flight("batch") == 0; }));
  EXPECT_TRUE(Generate(IdsRequest({1, 2}, 2), WithKey(kBatchKey)).status.ok());

  const std::string text = router_->metrics().Expose();
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_rejected_total{tenant=\"batch\","
                              "limit=\"max_concurrent_requests\"} 1"));
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_requests_total{tenant=\"batch\"} 2"));
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_requests_total{tenant=\"chat\"} 1"));
}

TEST_F(TenantServiceTest, TokensPerMinuteCountsPromptAndCompletion) {
  StartTokensPerMinuteRouter();
  // 20 prompt + 10 completion tokens: the first passes (60 -> 30), the
  // second too (30 -> 0), the third finds an empty bucket.
  const v1::GenerateRequest request = IdsRequest(std::vector<int32_t>(20, 5), 10);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Generate(request, WithKey(kBatchKey)).status.ok());
    // The completion is charged when the relay ends, just after the stream.
    ASSERT_TRUE(Eventually([&] { return router_->tenants().in_flight("batch") == 0; }));
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  ctx.AddMetadata("authorization", std::string("Bearer ") + kBatchKey);
  auto reader = llm_->Generate(&ctx, request);
  v1::GenerateResponse m;
  EXPECT_FALSE(reader->Read(&m));
  const grpc::Status refused = reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("tokens_per_minute (60)"));
  // About 20 s until 20 tokens are back (a little less: time passed).
  int64_t seconds = 0;
  ASSERT_TRUE(absl::SimpleAtoi(RetryAfterOf(ctx), &seconds)) << RetryAfterOf(ctx);
  EXPECT_GE(seconds, 15);
  EXPECT_LE(seconds, 20);
  EXPECT_EQ(workers_[0]->generate_calls(), 2);
}

// The same limit over the OpenAI HTTP API: 429, a Retry-After header and
// OpenAI's error body naming the limit.
TEST_F(TenantServiceTest, OverHttpALimitIs429WithRetryAfter) {
  StartTokensPerMinuteRouter();
  ASSERT_GT(router_->http_port(), 0);
  std::string prompt = "[5";
  for (int i = 1; i < 20; ++i) prompt += ",5";
  const std::string body =
      absl::StrCat(R"({"model":"fake","prompt":)", prompt, R"(],"max_tokens":10})");
  auto post = [&]() -> std::optional<http::testing::RawResponse> {
    http::testing::RawClient client(router_->http_port(), absl::Seconds(10));
    if (!client.Send(absl::StrCat(
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer ",
            kBatchKey, "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
            "\r\n\r\n", body))) {
      return std::nullopt;
    }
    return client.ReadResponse();
  };
  // 20 prompt + 10 completion tokens: two pass (60 -> 30 -> 0), the third
  // finds an empty bucket.
  for (int i = 0; i < 2; ++i) {
    const std::optional<http::testing::RawResponse> r = post();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_TRUE(Eventually([&] { return router_->tenants().in_flight("batch") == 0; }));
  }
  const std::optional<http::testing::RawResponse> r = post();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 429) << r->body;
  int64_t seconds = 0;
  ASSERT_TRUE(absl::SimpleAtoi(r->header("retry-after"), &seconds)) << r->header("retry-after");
  EXPECT_GE(seconds, 15);
  EXPECT_LE(seconds, 20);
  const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << r->body;
  EXPECT_EQ(j["error"]["type"], "rate_limit_error") << r->body;
  EXPECT_THAT(j["error"]["message"].get<std::string>(), HasSubstr("tokens_per_minute (60)"));
  EXPECT_EQ(workers_[0]->generate_calls(), 2);
}

TEST_F(TenantServiceTest, PriorityIsClampedToTheTenantsMaxPriority) {
  StartWorkers(1);
  workers_[0]->SetGenerateScript({.tokens = 1});
  RouterServerOptions o = FastOptions();
  o.api_keys = {Keyed("chat", kChatKey), Keyed("batch", kBatchKey)};
  o.api_keys[1].policy.max_priority = 10;
  StartRouter(o);
  v1::GenerateRequest urgent = IdsRequest({1, 2}, 1);
  urgent.set_priority(-5);
  urgent.set_user("someone");
  ASSERT_TRUE(Generate(urgent, WithKey(kBatchKey)).status.ok());
  ASSERT_TRUE(workers_[0]->last_request().has_value());
  EXPECT_EQ(workers_[0]->last_request()->priority(), 10);  // raised to the tenant's max
  EXPECT_EQ(workers_[0]->last_request()->user(), "");      // the router keeps `user`
  v1::GenerateRequest relaxed = urgent;
  relaxed.set_priority(20);
  ASSERT_TRUE(Generate(relaxed, WithKey(kBatchKey)).status.ok());
  EXPECT_EQ(workers_[0]->last_request()->priority(), 20);
  ASSERT_TRUE(Generate(urgent, WithKey(kChatKey)).status.ok());
  EXPECT_EQ(workers_[0]->last_request()->priority(), -5);  // no max_priority: any
}

TEST_F(TenantServiceTest, UserTenantsHaveTheDefaultLimitsEach) {
  StartWorkers(1);
  workers_[0]->SetGenerateScript({.tokens = 1, .hang = true});
  RouterServerOptions o = FastOptions();
  o.user_tenants = true;
  o.default_tenant.max_concurrent_requests = 1;
  StartRouter(o);
  auto held = std::make_unique<Held>();
  held->ctx.set_deadline(In(absl::Seconds(30)));
  v1::GenerateRequest alice = IdsRequest({1, 2, 3}, 4);
  alice.set_user("alice");
  held->reader = llm_->Generate(&held->ctx, alice);
  ASSERT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 1; }));
  EXPECT_EQ(router_->tenants().in_flight("user:alice"), 1);
  workers_[0]->SetGenerateScript({.tokens = 1});
  // alice is at her limit; bob and the default tenant are not.
  EXPECT_EQ(Generate(alice).status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  v1::GenerateRequest bob = alice;
  bob.set_user("bob");
  EXPECT_TRUE(Generate(bob).status.ok());
  EXPECT_TRUE(Generate(IdsRequest({1, 2}, 1)).status.ok());
  Release(std::move(held));
  const std::string text = router_->metrics().Expose();
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_requests_total{tenant=\"user\"} 2"));
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_requests_total{tenant=\"default\"} 1"));
}

TEST_F(TenantServiceTest, AFullAdmissionQueueAnswersWithRetryAfter) {
  StartWorkers(1);
  workers_[0]->SetGenerateScript({.tokens = 1, .hang = true});
  RouterServerOptions o = FastOptions();
  o.admission.max_concurrent = 1;
  o.admission.max_queued = 0;
  StartRouter(o);
  auto held = std::make_unique<Held>();
  held->ctx.set_deadline(In(absl::Seconds(30)));
  held->reader = llm_->Generate(&held->ctx, IdsRequest({1, 2, 3}, 4));
  ASSERT_TRUE(Eventually([&] { return workers_[0]->active_generates() == 1; }));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  auto reader = llm_->Generate(&ctx, IdsRequest({1, 2}, 1));
  v1::GenerateResponse m;
  EXPECT_FALSE(reader->Read(&m));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(RetryAfterOf(ctx), "1");
  Release(std::move(held));
}

}  // namespace
}  // namespace tessera::router::testing
