// Tenants of the router: who a request belongs to, with the weight of its
// share of the router's admission and its limits. A tenant is
//   - an API key of the --api-keys file (one entry per key, below);
//   - else, when --user-tenants is on, the request's `user` (the OpenAI
//     `user` field; GenerateRequest.user on gRPC): each distinct user is a
//     tenant with the default tenant's weight and limits;
//   - else the default tenant ("default": the single --api-key, or no key).
//
// The --api-keys file is JSON:
//   {
//     "tenants": [
//       {"name": "chat",  "key": "sk-chat-...",  "weight": 4},
//       {"name": "batch", "key": "sk-batch-...", "weight": 1,
//        "max_concurrent_requests": 64, "tokens_per_minute": 2000000,
//        "max_priority": 10}
//     ]
//   }
// name: [A-Za-z0-9_.-]{1,64}, unique, not "default" or "user" (those label
// the default and user-derived tenants in the metrics); key: 8..512 bytes,
// unique; weight: > 0 (default 1), its share of the router's slots relative
// to the other waiting tenants'; max_concurrent_requests: requests in the
// router (queued + running) at once, 0 = no limit; tokens_per_minute: prompt
// + completion tokens, charged as a token bucket of one minute's tokens (the
// prompt when the request arrives, the completion when it ends), 0 = no
// limit; max_priority: the most urgent `priority` the tenant may ask for
// (lower values run first, vLLM's convention): a request asking for less is
// given this one; absent = any.
//
// Thread-safe: plain values.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::router {

// A tenant's weight and limits.
struct TenantPolicy {
  std::string name;  // unique; also the `tenant` label of its metrics (see metrics_label)
  double weight = 1.0;
  int64_t max_concurrent_requests = 0;                         // 0 = no limit
  int64_t tokens_per_minute = 0;                               // 0 = no limit
  int32_t max_priority = std::numeric_limits<int32_t>::min();  // min = any
  // The `tenant` label of its metrics: the name for key-file tenants and the
  // default tenant; "user" for every user-derived tenant (bounded cardinality).
  std::string metrics_label;

  // `priority` clamped to what the tenant may ask for.
  int32_t ClampPriority(int32_t priority) const {
    return priority < max_priority ? max_priority : priority;
  }
};

// The shared, immutable policy of one tenant (requests hold it).
using TenantRef = std::shared_ptr<const TenantPolicy>;

struct KeyedTenant {
  std::string key;
  TenantPolicy policy;
};

// Label and name of the default tenant and of user-derived tenants.
inline constexpr absl::string_view kDefaultTenant = "default";
inline constexpr absl::string_view kUserTenantLabel = "user";
// The longest `user` that names a tenant (longer: INVALID_ARGUMENT).
inline constexpr size_t kMaxUserLength = 256;

// Parses the --api-keys file's text (JSON, above). INVALID_ARGUMENT naming
// the entry (index and name) and field for anything wrong; never echoes a key.
absl::StatusOr<std::vector<KeyedTenant>> ParseApiKeys(absl::string_view json);
// Reads and parses `path`; NOT_FOUND / PERMISSION_DENIED naming the path when
// it cannot be read; the parse errors above prefixed with the path.
absl::StatusOr<std::vector<KeyedTenant>> LoadApiKeysFile(const std::string& path);

}  // namespace tessera::router
