#include "router/tenant_limits.h"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::HasSubstr;

TenantPolicy Policy(const std::string& name, int64_t max_concurrent, int64_t tpm) {
  TenantPolicy p;
  p.name = name;
  p.metrics_label = name;
  p.max_concurrent_requests = max_concurrent;
  p.tokens_per_minute = tpm;
  return p;
}

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

TEST(TenantLimitsTest, ConcurrencyLimitRefusesWithRetryAfterAndNamesTheLimit) {
  TenantLimits limits;
  const TenantPolicy p = Policy("batch", 2, 0);
  ASSERT_TRUE(limits.Admit(p, 10, kT0).ok());
  ASSERT_TRUE(limits.Admit(p, 10, kT0).ok());
  TenantLimit why;
  const absl::Status s = limits.Admit(p, 10, kT0, &why);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(why, TenantLimit::kConcurrentRequests);
  EXPECT_THAT(s.message(), HasSubstr("tenant batch"));
  EXPECT_THAT(s.message(), HasSubstr("max_concurrent_requests 2"));
  ASSERT_TRUE(RetryAfter(s).has_value());
  EXPECT_EQ(*RetryAfter(s), absl::Seconds(1));
  EXPECT_EQ(limits.in_flight("batch"), 2);
  // One ends: the next one passes.
  limits.End(p, 5, kT0);
  EXPECT_TRUE(limits.Admit(p, 10, kT0).ok());
}

TEST(TenantLimitsTest, TenantsAreIndependent) {
  TenantLimits limits;
  const TenantPolicy a = Policy("a", 1, 0);
  const TenantPolicy b = Policy("b", 1, 0);
  ASSERT_TRUE(limits.Admit(a, 1, kT0).ok());
  EXPECT_TRUE(limits.Admit(b, 1, kT0).ok());
  EXPECT_FALSE(limits.Admit(a, 1, kT0).ok());
}

TEST(TenantLimitsTest, TokensPerMinuteBucketAndExactRetryAfter) {
  TenantLimits limits;
  const TenantPolicy p = Policy("t", 0, 600);  // 10 tokens per second
  // A full bucket: 600 tokens. Prompt 500 passes, then 100 are left.
  ASSERT_TRUE(limits.Admit(p, 500, kT0).ok());
  EXPECT_DOUBLE_EQ(limits.tokens(p, kT0), 100);
  // 150 more needs 50 tokens that arrive in 5 s.
  TenantLimit why;
  absl::Status s = limits.Admit(p, 150, kT0, &why);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(why, TenantLimit::kTokensPerMinute);
  EXPECT_THAT(s.message(), HasSubstr("tokens_per_minute (600)"));
  ASSERT_TRUE(RetryAfter(s).has_value());
  EXPECT_EQ(*RetryAfter(s), absl::Seconds(5));
  EXPECT_EQ(RetryAfterSeconds(*RetryAfter(s)), 5);
  // Just before that it is still refused; at it, it passes.
  EXPECT_FALSE(limits.Admit(p, 150, kT0 + absl::Milliseconds(4900)).ok());
  EXPECT_TRUE(limits.Admit(p, 150, kT0 + absl::Seconds(5)).ok());
}

TEST(TenantLimitsTest, CompletionTokensAreChargedAtTheEndAndMayLeaveADebt) {
  TenantLimits limits;
  const TenantPolicy p = Policy("t", 0, 600);
  ASSERT_TRUE(limits.Admit(p, 100, kT0).ok());
  limits.End(p, 800, kT0);  // 600 - 100 - 800 = -300
  EXPECT_DOUBLE_EQ(limits.tokens(p, kT0), -300);
  absl::Status s = limits.Admit(p, 10, kT0);
  ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  // 310 tokens at 10 per second.
  EXPECT_EQ(*RetryAfter(s), absl::Seconds(31));
  EXPECT_TRUE(limits.Admit(p, 10, kT0 + absl::Seconds(31)).ok());
}

TEST(TenantLimitsTest, TheBucketHoldsAtMostOneMinute) {
  TenantLimits limits;
  const TenantPolicy p = Policy("t", 1, 600);
  ASSERT_TRUE(limits.Admit(p, 600, kT0).ok());
  limits.End(p, 0, kT0);
  // An hour later: 600, not 36000.
  EXPECT_DOUBLE_EQ(limits.tokens(p, kT0 + absl::Hours(1)), 600);
  ASSERT_TRUE(limits.Admit(p, 600, kT0 + absl::Hours(1)).ok());
  EXPECT_FALSE(limits.Admit(p, 1, kT0 + absl::Hours(1)).ok());
}

TEST(TenantLimitsTest, APromptLargerThanAMinuteIsInvalid) {
  TenantLimits limits;
  TenantLimit why;
  absl::Status s = limits.Admit(Policy("t", 0, 100), 101, kT0, &why);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(why, TenantLimit::kPromptTooLarge);
  EXPECT_THAT(s.message(), HasSubstr("tokens_per_minute (100)"));
  EXPECT_FALSE(RetryAfter(s).has_value());
}

TEST(TenantLimitsTest, NoLimitsAdmitEverythingAndForgetIdleTenants) {
  TenantLimits limits;
  const TenantPolicy p = Policy("free", 0, 0);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(limits.Admit(p, 1 << 20, kT0).ok());
  EXPECT_EQ(limits.in_flight("free"), 100);
  for (int i = 0; i < 100; ++i) limits.End(p, 1 << 20, kT0);
  EXPECT_EQ(limits.entries(), 0u);
}

TEST(TenantLimitsTest, TrackedTenantsAreBoundedAndRefilledOnesAreSwept) {
  TenantLimits limits(/*max_tenants=*/2);
  const TenantPolicy a = Policy("a", 0, 60);
  const TenantPolicy b = Policy("b", 0, 60);
  const TenantPolicy c = Policy("c", 0, 60);
  ASSERT_TRUE(limits.Admit(a, 30, kT0).ok());
  limits.End(a, 0, kT0);  // idle, but its bucket is not full: kept
  ASSERT_TRUE(limits.Admit(b, 30, kT0).ok());
  TenantLimit why;
  absl::Status s = limits.Admit(c, 1, kT0, &why);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(why, TenantLimit::kTrackedTenants);
  EXPECT_TRUE(RetryAfter(s).has_value());
  // 30 s later a's bucket is full again (1 token per second): it is swept.
  EXPECT_TRUE(limits.Admit(c, 1, kT0 + absl::Seconds(30)).ok());
  EXPECT_EQ(limits.entries(), 2u);
}

TEST(TenantLimitsTest, RetryAfterSecondsRoundsUpToAtLeastOne) {
  EXPECT_EQ(RetryAfterSeconds(absl::ZeroDuration()), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::Milliseconds(1)), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::Milliseconds(1001)), 2);
  EXPECT_EQ(RetryAfterSeconds(absl::Seconds(7)), 7);
  absl::Status s = absl::ResourceExhaustedError("x");
  EXPECT_FALSE(RetryAfter(s).has_value());
  SetRetryAfter(s, absl::Milliseconds(2500));
  EXPECT_EQ(RetryAfter(s), absl::Milliseconds(2500));
}

}  // namespace
}  // namespace tessera::router
