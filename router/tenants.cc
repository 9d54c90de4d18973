#include "router/tenants.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "router/auth.h"

namespace tessera::router {
namespace {

TenantRef MakeDefaultTenant(TenantPolicy defaults) {
  defaults.name = std::string(kDefaultTenant);
  defaults.metrics_label = std::string(kDefaultTenant);
  return std::make_shared<const TenantPolicy>(std::move(defaults));
}

}  // namespace

struct Tenants::Metrics {
  explicit Metrics(metrics::Registry& r)
      : requests(r.AddCounter("tessera_router_tenant_requests_total",
                              "Requests admitted past their tenant's limits, by tenant (the "
                              "key-file name, default, or user for user-derived tenants).",
                              {"tenant"})),
        rejected(r.AddCounter(
            "tessera_router_tenant_rejected_total",
            "Requests refused by a tenant limit (429 / RESOURCE_EXHAUSTED; prompt_too_large: "
            "400), by tenant and limit.",
            {"tenant", "limit"})),
        tokens(r.AddCounter("tessera_router_tenant_tokens_total",
                            "Tokens charged to tenants, by tenant and kind (prompt, completion).",
                            {"tenant", "kind"})),
        in_flight(r.AddGauge("tessera_router_tenant_in_flight",
                             "Admitted requests of the tenant not yet ended (queued or running).",
                             {"tenant"})) {}
  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Counter>& rejected;
  metrics::Family<metrics::Counter>& tokens;
  metrics::Family<metrics::Gauge>& in_flight;
};

TenantLease::~TenantLease() { owner_->End(*tenant_, completion_tokens_); }

Tenants::Tenants(TenantsOptions options, metrics::Registry* registry)
    : user_tenants_(options.user_tenants),
      defaults_(options.defaults),
      default_tenant_(MakeDefaultTenant(options.defaults)) {
  for (KeyedTenant& k : options.keyed) {
    k.policy.metrics_label = k.policy.name;
    keys_.push_back(Key{absl::StrCat("Bearer ", k.key),
                        std::make_shared<const TenantPolicy>(std::move(k.policy))});
  }
  if (!options.api_key.empty()) {
    keys_.push_back(Key{absl::StrCat("Bearer ", options.api_key), nullptr});
  }
  if (registry != nullptr) {
    metrics_ = std::make_unique<Metrics>(*registry);
    // Every key-file tenant and the default tenant show up from the start.
    for (const Key& k : keys_) {
      const std::string& label =
          k.tenant ? k.tenant->metrics_label : default_tenant_->metrics_label;
      metrics_->requests.Labels({label});
      metrics_->in_flight.Labels({label});
    }
    metrics_->requests.Labels({default_tenant_->metrics_label});
    metrics_->in_flight.Labels({default_tenant_->metrics_label});
  }
}

Tenants::~Tenants() = default;

absl::StatusOr<TenantRef> Tenants::Identify(std::optional<absl::string_view> authorization,
                                            absl::string_view user) const {
  if (!keys_.empty()) {
    if (!authorization.has_value()) {
      return absl::UnauthenticatedError(
          "missing 'authorization: Bearer <key>' (this server requires an API key: "
          "--api-keys / --api-key)");
    }
    // Compare with every key, in time that does not depend on which matched.
    const Key* match = nullptr;
    for (const Key& k : keys_) {
      if (ConstantTimeEquals(*authorization, k.bearer) && match == nullptr) match = &k;
    }
    if (match == nullptr) {
      return absl::UnauthenticatedError(
          "the bearer token matches no API key of the router (--api-keys / --api-key)");
    }
    if (match->tenant != nullptr) return match->tenant;  // a key-file tenant: `user` is ignored
  }
  if (!user_tenants_ || user.empty()) return default_tenant_;
  if (user.size() > kMaxUserLength) {
    return absl::InvalidArgumentError(absl::StrCat("user is ", user.size(), " bytes long; at most ",
                                                   kMaxUserLength,
                                                   " (it names the request's tenant)"));
  }
  TenantPolicy policy = defaults_;
  // ':' is not allowed in key-file names, so "user:..." never collides.
  policy.name = absl::StrCat("user:", user);
  policy.metrics_label = std::string(kUserTenantLabel);
  return std::make_shared<const TenantPolicy>(std::move(policy));
}

absl::StatusOr<TenantRef> Tenants::Identify(const grpc::ServerContextBase& context,
                                            absl::string_view user) const {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return Identify(std::nullopt, user);
  return Identify(absl::string_view(it->second.data(), it->second.size()), user);
}

absl::StatusOr<std::unique_ptr<TenantLease>> Tenants::Admit(TenantRef tenant,
                                                            int64_t prompt_tokens) {
  TenantLimit refused_by = TenantLimit::kConcurrentRequests;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    status = limits_.Admit(*tenant, prompt_tokens, absl::Now(), &refused_by);
  }
  if (!status.ok()) {
    if (metrics_ != nullptr) {
      metrics_->rejected.Labels({tenant->metrics_label, std::string(TenantLimitName(refused_by))})
          .Inc();
    }
    return status;
  }
  if (metrics_ != nullptr) {
    metrics_->requests.Labels({tenant->metrics_label}).Inc();
    metrics_->tokens.Labels({tenant->metrics_label, "prompt"})
        .Inc(static_cast<double>(prompt_tokens));
    metrics_->in_flight.Labels({tenant->metrics_label}).Add(1);
  }
  return std::unique_ptr<TenantLease>(new TenantLease(this, std::move(tenant)));
}

void Tenants::End(const TenantPolicy& tenant, int64_t completion_tokens) {
  {
    absl::MutexLock lock(&mu_);
    limits_.End(tenant, completion_tokens, absl::Now());
  }
  if (metrics_ != nullptr) {
    metrics_->tokens.Labels({tenant.metrics_label, "completion"})
        .Inc(static_cast<double>(std::max<int64_t>(0, completion_tokens)));
    metrics_->in_flight.Labels({tenant.metrics_label}).Add(-1);
  }
}

int64_t Tenants::in_flight(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  return limits_.in_flight(tenant);
}

}  // namespace tessera::router
