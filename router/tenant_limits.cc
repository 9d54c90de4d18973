#include "router/tenant_limits.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace tessera::router {
namespace {

constexpr absl::string_view kRetryAfterPayload = "type.tessera.dev/retry-after-ms";
constexpr absl::Duration kConcurrencyRetryAfter = absl::Seconds(1);

double PerSecond(int64_t tokens_per_minute) {
  return static_cast<double>(tokens_per_minute) / 60.0;
}

}  // namespace

absl::string_view TenantLimitName(TenantLimit limit) {
  switch (limit) {
    case TenantLimit::kConcurrentRequests:
      return "max_concurrent_requests";
    case TenantLimit::kTokensPerMinute:
      return "tokens_per_minute";
    case TenantLimit::kPromptTooLarge:
      return "prompt_too_large";
    case TenantLimit::kTrackedTenants:
      return "tracked_tenants";
  }
  return "unknown";
}

void SetRetryAfter(absl::Status& status, absl::Duration retry_after) {
  status.SetPayload(kRetryAfterPayload,
                    absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(retry_after))));
}

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms)) return std::nullopt;
  return absl::Milliseconds(ms);
}

int64_t RetryAfterSeconds(absl::Duration retry_after) {
  return std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(retry_after, absl::Seconds(1))));
}

double TenantLimits::Level(const State& s, absl::Time now) {
  if (s.tokens_per_minute <= 0) return 0;
  const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - s.refilled));
  return std::min(static_cast<double>(s.tokens_per_minute),
                  s.tokens + elapsed * PerSecond(s.tokens_per_minute));
}

bool TenantLimits::Idle(const State& s, absl::Time now) {
  return s.in_flight == 0 &&
         (s.tokens_per_minute <= 0 || Level(s, now) >= static_cast<double>(s.tokens_per_minute));
}

void TenantLimits::Sweep(absl::Time now) {
  for (auto it = state_.begin(); it != state_.end();) {
    if (Idle(it->second, now)) {
      state_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::Status TenantLimits::Admit(const TenantPolicy& tenant, int64_t prompt_tokens, absl::Time now,
                                 TenantLimit* refused_by) {
  TenantLimit ignored;
  if (refused_by == nullptr) refused_by = &ignored;
  const int64_t tpm = tenant.tokens_per_minute;
  if (tpm > 0 && prompt_tokens > tpm) {
    *refused_by = TenantLimit::kPromptTooLarge;
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt's ", prompt_tokens, " tokens exceed tenant ", tenant.name,
                     "'s tokens_per_minute (", tpm, "): the request can never be admitted"));
  }
  auto it = state_.find(tenant.name);
  if (it == state_.end()) {
    if (state_.size() >= max_tenants_) Sweep(now);
    if (state_.size() >= max_tenants_) {
      *refused_by = TenantLimit::kTrackedTenants;
      absl::Status s = absl::ResourceExhaustedError(
          absl::StrCat("the router tracks ", state_.size(), " tenants with recent requests (max ",
                       max_tenants_, "); tenant ", tenant.name, " must wait"));
      SetRetryAfter(s, kConcurrencyRetryAfter);
      return s;
    }
    State fresh;
    fresh.tokens_per_minute = tpm;
    fresh.tokens = static_cast<double>(std::max<int64_t>(tpm, 0));  // a full bucket
    fresh.refilled = now;
    it = state_.emplace(tenant.name, fresh).first;
  }
  State& s = it->second;
  // Refill at the old rate, then apply the tenant's current limit.
  s.tokens = Level(s, now);
  s.refilled = now;
  if (s.tokens_per_minute != tpm) {
    s.tokens = tpm <= 0 ? 0 : std::min(s.tokens, static_cast<double>(tpm));
    s.tokens_per_minute = tpm;
  }
  const int64_t max_concurrent = tenant.max_concurrent_requests;
  if (max_concurrent > 0 && s.in_flight >= max_concurrent) {
    *refused_by = TenantLimit::kConcurrentRequests;
    absl::Status refusal = absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", tenant.name, " has ", s.in_flight,
        " requests in flight, its limit (max_concurrent_requests ", max_concurrent, ")"));
    SetRetryAfter(refusal, kConcurrencyRetryAfter);
    return refusal;
  }
  if (tpm > 0 && s.tokens < static_cast<double>(prompt_tokens)) {
    *refused_by = TenantLimit::kTokensPerMinute;
    const double missing = static_cast<double>(prompt_tokens) - s.tokens;
    const absl::Duration wait = absl::Milliseconds(std::ceil(missing / PerSecond(tpm) * 1000.0));
    absl::Status refusal = absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", tenant.name, " is over its tokens_per_minute (", tpm,
        "): ", static_cast<int64_t>(std::floor(s.tokens)), " tokens left, the prompt needs ",
        prompt_tokens, "; retry after ", absl::FormatDuration(wait)));
    SetRetryAfter(refusal, wait);
    return refusal;
  }
  ++s.in_flight;
  if (tpm > 0) s.tokens -= static_cast<double>(prompt_tokens);
  return absl::OkStatus();
}

void TenantLimits::End(const TenantPolicy& tenant, int64_t completion_tokens, absl::Time now) {
  auto it = state_.find(tenant.name);
  TESSERA_CHECK(it != state_.end() && it->second.in_flight > 0, "End of tenant ", tenant.name,
                " without an admitted request");
  State& s = it->second;
  s.tokens = Level(s, now);
  s.refilled = now;
  --s.in_flight;
  if (s.tokens_per_minute > 0)
    s.tokens -= static_cast<double>(std::max<int64_t>(0, completion_tokens));
  if (Idle(s, now)) state_.erase(it);
}

int64_t TenantLimits::in_flight(const std::string& tenant) const {
  auto it = state_.find(tenant);
  return it == state_.end() ? 0 : it->second.in_flight;
}

double TenantLimits::tokens(const TenantPolicy& tenant, absl::Time now) const {
  auto it = state_.find(tenant.name);
  if (it == state_.end()) return static_cast<double>(tenant.tokens_per_minute);
  return Level(it->second, now);
}

}  // namespace tessera::router
