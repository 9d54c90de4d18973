// Per-tenant limits of the router (router/tenant_config.h's TenantPolicy):
//   max_concurrent_requests  requests of the tenant in the router (waiting for
//                            a slot or running) at once;
//   tokens_per_minute        a token bucket holding one minute's tokens,
//                            refilled continuously (tokens_per_minute / 60
//                            per second). A request's prompt tokens are taken
//                            when it arrives (it is refused while the bucket
//                            holds fewer), its completion tokens when it ends
//                            (the bucket may go below zero: the tenant then
//                            waits until it refills).
// A refusal is RESOURCE_EXHAUSTED naming the tenant and the limit, with the
// time after which the same request would pass attached (RetryAfter below):
// exact for tokens; 1 s for concurrency (when a request ends is unknown).
// A prompt larger than a whole minute's tokens can never pass:
// INVALID_ARGUMENT.
//
// Pure bookkeeping: time is passed in. Memory: one entry per tenant with a
// request in flight or a bucket not yet full again; at most `max_tenants`
// entries (a new tenant beyond that is refused with RESOURCE_EXHAUSTED).
// Not thread-safe: the owner serializes calls (router/tenants.h does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "router/tenant_config.h"

namespace tessera::router {

// Attaches / reads the Retry-After of a refusal (an absl::Status payload).
void SetRetryAfter(absl::Status& status, absl::Duration retry_after);
std::optional<absl::Duration> RetryAfter(const absl::Status& status);
// Whole seconds for a Retry-After header or `retry-after` metadata: the
// duration rounded up, at least 1.
int64_t RetryAfterSeconds(absl::Duration retry_after);

// Which limit refused a request (the `limit` label of the metrics).
enum class TenantLimit {
  kConcurrentRequests,  // max_concurrent_requests
  kTokensPerMinute,     // tokens_per_minute: the bucket holds too few
  kPromptTooLarge,      // tokens_per_minute: more than a minute's tokens
  kTrackedTenants,      // max_tenants entries
};
absl::string_view TenantLimitName(TenantLimit limit);

class TenantLimits {
 public:
  explicit TenantLimits(size_t max_tenants = 100000) : max_tenants_(max_tenants) {}

  // A request of `tenant` with `prompt_tokens` arrives at `now`: OK (it is
  // counted in flight and its prompt charged) or a refusal (nothing changes;
  // `refused_by`, when given, says which limit).
  absl::Status Admit(const TenantPolicy& tenant, int64_t prompt_tokens, absl::Time now,
                     TenantLimit* refused_by = nullptr);
  // An admitted request of `tenant` ends at `now` with `completion_tokens`.
  void End(const TenantPolicy& tenant, int64_t completion_tokens, absl::Time now);

  int64_t in_flight(const std::string& tenant) const;
  // The bucket's level at `now` (tokens; negative while in debt); the whole
  // minute's tokens when the tenant has no entry.
  double tokens(const TenantPolicy& tenant, absl::Time now) const;
  size_t entries() const { return state_.size(); }

 private:
  struct State {
    int64_t tokens_per_minute = 0;  // the tenant's, as of its last request
    int64_t in_flight = 0;
    double tokens = 0;  // the bucket at `refilled`
    absl::Time refilled;
  };
  // The bucket of `s` at `now` (refilled, capped at one minute's tokens).
  static double Level(const State& s, absl::Time now);
  // Nothing in flight and the bucket full again: the entry can go.
  static bool Idle(const State& s, absl::Time now);
  // Drops the entries of idle tenants.
  void Sweep(absl::Time now);

  const size_t max_tenants_;
  absl::flat_hash_map<std::string, State> state_;
};

}  // namespace tessera::router
