#include "router/tenants.h"

#include <memory>
#include <string>

#include "common/metrics/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

KeyedTenant Keyed(const std::string& name, const std::string& key, double weight,
                  int64_t max_concurrent = 0) {
  KeyedTenant k;
  k.key = key;
  k.policy.name = name;
  k.policy.weight = weight;
  k.policy.max_concurrent_requests = max_concurrent;
  return k;
}

TenantsOptions TwoTenants() {
  TenantsOptions o;
  o.keyed = {Keyed("chat", "sk-chat-0001", 4), Keyed("batch", "sk-batch-001", 1, 1)};
  return o;
}

TEST(TenantsTest, KeysNameTheirTenantAndUnknownKeysAreRefused) {
  Tenants tenants(TwoTenants(), nullptr);
  EXPECT_TRUE(tenants.keys_required());
  absl::StatusOr<TenantRef> t = tenants.Identify("Bearer sk-chat-0001", "someone");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->name, "chat");  // a key-file tenant ignores `user`
  EXPECT_EQ((*t)->weight, 4);
  EXPECT_EQ((*tenants.Identify("Bearer sk-batch-001", ""))->name, "batch");
  absl::StatusOr<TenantRef> none = tenants.Identify(std::nullopt, "");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  absl::StatusOr<TenantRef> wrong = tenants.Identify("Bearer sk-chat-0002", "");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.status().message(), Not(HasSubstr("sk-chat")));
  EXPECT_EQ(tenants.Identify("sk-chat-0001", "").status().code(),
            absl::StatusCode::kUnauthenticated);  // not a bearer token
}

TEST(TenantsTest, TheSingleApiKeyIsTheDefaultTenant) {
  TenantsOptions o;
  o.api_key = "the-one-key";
  Tenants tenants(o, nullptr);
  absl::StatusOr<TenantRef> t = tenants.Identify("Bearer the-one-key", "");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->name, "default");
  EXPECT_FALSE(tenants.Identify("Bearer other-key", "").ok());
}

TEST(TenantsTest, UserTenantsOnlyWhenEnabledAndNotForKeyFileTenants) {
  TenantsOptions o = TwoTenants();
  o.api_key = "shared-key-1";
  o.user_tenants = true;
  o.defaults.weight = 2;
  o.defaults.max_concurrent_requests = 3;
  Tenants tenants(o, nullptr);
  absl::StatusOr<TenantRef> alice = tenants.Identify("Bearer shared-key-1", "alice");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ((*alice)->name, "user:alice");
  EXPECT_EQ((*alice)->metrics_label, "user");
  EXPECT_EQ((*alice)->weight, 2);
  EXPECT_EQ((*alice)->max_concurrent_requests, 3);
  EXPECT_EQ((*tenants.Identify("Bearer shared-key-1", ""))->name, "default");
  EXPECT_EQ((*tenants.Identify("Bearer sk-chat-0001", "alice"))->name, "chat");
  absl::StatusOr<TenantRef> long_user =
      tenants.Identify("Bearer shared-key-1", std::string(kMaxUserLength + 1, 'u'));
  EXPECT_EQ(long_user.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(long_user.status().message(), HasSubstr("at most 256"));

  TenantsOptions off;
  Tenants no_users(off, nullptr);
  EXPECT_FALSE(no_users.keys_required());
  EXPECT_EQ((*no_users.Identify(std::nullopt, "alice"))->name, "default");
}

TEST(TenantsTest, LeasesHoldTheLimitAndFeedTheMetrics) {
  metrics::Registry registry;
  Tenants tenants(TwoTenants(), &registry);
  TenantRef batch = *tenants.Identify("Bearer sk-batch-001", "");
  absl::StatusOr<std::unique_ptr<TenantLease>> first = tenants.Admit(batch, 7);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->requester().tenant, "batch");
  EXPECT_EQ((*first)->requester().weight, 1);
  EXPECT_EQ(tenants.in_flight("batch"), 1);
  absl::StatusOr<std::unique_ptr<TenantLease>> second = tenants.Admit(batch, 7);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(RetryAfter(second.status()).has_value());
  (*first)->set_completion_tokens(5);
  first->reset();  // the request ended
  EXPECT_EQ(tenants.in_flight("batch"), 0);
  EXPECT_TRUE(tenants.Admit(batch, 7).ok());  // its lease ends at once

  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_requests_total{tenant=\"batch\"} 2"));
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_requests_total{tenant=\"chat\"} 0"));
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_rejected_total{tenant=\"batch\","
                              "limit=\"max_concurrent_requests\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("tessera_router_tenant_tokens_total{tenant=\"batch\",kind=\"prompt\"} 14"));
  EXPECT_THAT(
      text,
      HasSubstr("tessera_router_tenant_tokens_total{tenant=\"batch\",kind=\"completion\"} 5"));
  EXPECT_THAT(text, HasSubstr("tessera_router_tenant_in_flight{tenant=\"batch\"} 0"));
}

}  // namespace
}  // namespace tessera::router
