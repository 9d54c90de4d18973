// Placement policies: which eligible worker gets a request.
//
//   round_robin  each worker in turn
//   least_load   power of two choices: two random candidates, the lighter wins
//   prefix       (default) the worker holding the longest cached prefix of the
//                prompt, traded off against load; when the cluster is out of
//                balance (max load > balance_rel * min load + balance_abs) it
//                behaves as least_load.
//
// The WorkerPool filters candidates (healthy, not draining, breaker closed or
// probing, not already tried for this request); a policy only chooses among
// them. Choose is called concurrently from many gRPC threads: implementations
// are thread-safe (atomics or a small lock for their own state).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/prefix_index.h"

namespace tessera::router {

struct Candidate {
  WorkerSlot slot = 0;
  // Requests the worker is busy with: max(this router's in-flight requests
  // there, the worker's last reported running + waiting). Other routers'
  // requests show up through the report.
  int64_t load = 0;
  // Leading prompt blocks the worker holds (filled by the caller from the
  // PrefixIndex when the policy wants_prefix_match()).
  int matched_blocks = 0;
};

struct PlacementRequest {
  // Chained hashes of the prompt's full blocks (common/block_hash.h).
  std::span<const uint64_t> block_hashes;
};

struct PolicyOptions {
  // prefix: out of balance when max_load > balance_rel * min_load + balance_abs.
  double balance_rel = 1.5;
  int64_t balance_abs = 4;
  // prefix: score = matched_blocks / prompt_blocks - load_weight * load / (max_load + 1).
  double load_weight = 0.5;
  uint64_t seed = 0;  // random choices (least_load; ties); 0 = seeded from the clock
};

// Why a worker was chosen (the router's placement metrics):
//   kPrefixMatch      prefix: the chosen worker holds part of the prompt
//   kBalanceFallback  prefix: the cluster was out of balance (least_load used)
//   kPolicy           anything else: round_robin, least_load, or prefix
//                     with no cached prefix anywhere useful
enum class PlacementReason { kPrefixMatch, kBalanceFallback, kPolicy };
// "prefix_match", "balance_fallback", "policy".
const char* PlacementReasonName(PlacementReason reason);

struct Choice {
  size_t index = 0;  // into the candidates
  PlacementReason reason = PlacementReason::kPolicy;
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  virtual absl::string_view name() const = 0;
  // Whether Choose reads Candidate::matched_blocks (the caller then fills it).
  virtual bool wants_prefix_match() const = 0;
  // Index into `candidates` (non-empty) of the chosen worker.
  virtual size_t Choose(const PlacementRequest& request, std::span<const Candidate> candidates) = 0;
  // Choose, and why (the default: reason kPolicy).
  virtual Choice Decide(const PlacementRequest& request, std::span<const Candidate> candidates) {
    return Choice{Choose(request, candidates), PlacementReason::kPolicy};
  }
};

// "round_robin", "least_load" or "prefix"; INVALID_ARGUMENT naming the
// accepted values otherwise.
absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePolicy(absl::string_view name,
                                                            const PolicyOptions& options);

}  // namespace tessera::router
