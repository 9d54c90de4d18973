// The router's tenants at run time (router/tenant_config.h says what a
// tenant is): which tenant a request belongs to (its API key, else its
// `user` when --user-tenants is on, else the default tenant), that tenant's
// limits (router/tenant_limits.h) and its metrics:
//
//   tessera_router_tenant_requests_total{tenant}         requests admitted past the limits
//   tessera_router_tenant_rejected_total{tenant,limit}   refused by a tenant limit
//                                                        (max_concurrent_requests,
//                                                        tokens_per_minute, prompt_too_large,
//                                                        tracked_tenants)
//   tessera_router_tenant_tokens_total{tenant,kind}      prompt / completion tokens charged
//   tessera_router_tenant_in_flight{tenant}              admitted requests not ended
//
// `tenant` is the key-file tenant's name, "default", or "user" for every
// user-derived tenant together, so the label's values are bounded by the
// key file.
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metrics.h"
#include "grpcpp/grpcpp.h"
#include "router/admission.h"
#include "router/tenant_config.h"
#include "router/tenant_limits.h"

namespace tessera::router {

struct TenantsOptions {
  std::vector<KeyedTenant> keyed;  // --api-keys (empty: none)
  std::string api_key;             // --api-key: the default tenant's key (empty: none)
  // --user-tenants: a request that is not a key-file tenant's belongs to the
  // tenant named by its `user` (when it has one).
  bool user_tenants = false;
  // Weight and limits of the default tenant and of each user-derived tenant
  // (name and metrics_label are set by Tenants).
  TenantPolicy defaults;
};

class Tenants;

// One admitted request's hold on its tenant's limits: the tenant's
// in-flight count and token bucket are settled when it is destroyed.
// Not thread-safe (one owner: the request's relay).
class TenantLease {
 public:
  ~TenantLease();
  TenantLease(const TenantLease&) = delete;
  TenantLease& operator=(const TenantLease&) = delete;

  const TenantPolicy& tenant() const { return *tenant_; }
  // The admission controller's view: the fair queue's tenant and weight.
  AdmissionController::Requester requester() const { return {tenant_->name, tenant_->weight}; }
  // The completion tokens the request produced (charged at destruction).
  void set_completion_tokens(int64_t n) { completion_tokens_ = n; }

 private:
  friend class Tenants;
  TenantLease(Tenants* owner, TenantRef tenant) : owner_(owner), tenant_(std::move(tenant)) {}
  Tenants* const owner_;
  const TenantRef tenant_;
  int64_t completion_tokens_ = 0;
};

class Tenants {
 public:
  // `registry`: where the tenant metrics go (null: none). It outlives this.
  Tenants(TenantsOptions options, metrics::Registry* registry);
  ~Tenants();  // every lease has ended
  Tenants(const Tenants&) = delete;
  Tenants& operator=(const Tenants&) = delete;

  // True when a request must carry a key (--api-keys or --api-key).
  bool keys_required() const { return !keys_.empty(); }

  // The tenant of a request with `authorization` (the header's value; nullopt:
  // none) and `user`. UNAUTHENTICATED when keys are required and it carries
  // none of them (the message never shows a key); INVALID_ARGUMENT when a
  // `user` that would name a tenant is longer than kMaxUserLength.
  absl::StatusOr<TenantRef> Identify(std::optional<absl::string_view> authorization,
                                     absl::string_view user) const;
  // The same with the gRPC call's `authorization` metadata.
  absl::StatusOr<TenantRef> Identify(const grpc::ServerContextBase& context,
                                     absl::string_view user) const;

  // Admits a request of `tenant` with `prompt_tokens` past its limits: the
  // lease (held until the request ends), or the refusal (RESOURCE_EXHAUSTED
  // with RetryAfter, or INVALID_ARGUMENT; router/tenant_limits.h).
  absl::StatusOr<std::unique_ptr<TenantLease>> Admit(TenantRef tenant, int64_t prompt_tokens);

  int64_t in_flight(const std::string& tenant) const;

 private:
  friend class TenantLease;
  void End(const TenantPolicy& tenant, int64_t completion_tokens);
  struct Metrics;

  struct Key {
    std::string bearer;  // "Bearer <key>"
    TenantRef tenant;    // null: the default tenant (--api-key)
  };
  std::vector<Key> keys_;
  const bool user_tenants_;
  const TenantPolicy defaults_;  // for user-derived tenants
  const TenantRef default_tenant_;
  std::unique_ptr<Metrics> metrics_;  // null without a registry

  mutable absl::Mutex mu_;
  TenantLimits limits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::router
