// The parameters every worker of a cluster must agree on (block size and the
// served model: id, max_model_len, vocab_size, tokenizer hash, max_logprobs,
// max_stop, max_n), how the router checks what a worker reports, and how it
// chooses the cluster's values:
//   - every reported value must be in a sane range (ValidateReportedParams);
//     a worker reporting block_size = 2147483647 or vocab_size = 0 is
//     refused and never counts;
//   - values pinned by the operator (the router's --block-size,
//     --max-model-len, --vocab-size, --model-id, --tokenizer-hash) win;
//   - the rest come from the majority of the workers that answer their
//     health polls (ClusterVote), not from whoever answered first.
// A worker whose parameters differ from the cluster's is refused with a
// message naming the field (Disagreement).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/model_text.h"
#include "router/prefix_index.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router {

// What one worker reports: LoadReport.block_size and its ModelInfo
// (Llm.ListModels). Value type.
struct ClusterParams {
  int32_t block_size = 0;
  v1::ModelInfo model;
};

// Whether two reports agree on every field (ModelInfo's optional limits
// compare by their effective values: unset = the documented default).
bool SameParams(const ClusterParams& a, const ClusterParams& b);

// INVALID_ARGUMENT naming the first field out of range and the range, e.g.
// "block_size 2147483647 is out of range [1, 1024]". The ranges:
//   block_size [1, 1024]; max_model_len [2, 2^24]; vocab_size [1, 2^24];
//   model id 1..256 bytes; tokenizer_hash empty or 1..64 lowercase hex
//   digits; max_logprobs [0, 2^20], max_stop [0, 4096], max_n [1, 2^20]
//   when set.
absl::Status ValidateReportedParams(const ClusterParams& params);

// Values the operator fixed with router flags; unset fields come from the
// workers. Value type.
struct ClusterParamsPin {
  std::optional<int32_t> block_size;
  std::optional<int32_t> max_model_len;
  std::optional<int32_t> vocab_size;
  std::optional<std::string> model_id;
  std::optional<std::string> tokenizer_hash;

  bool empty() const;
  // INVALID_ARGUMENT naming the flag when a pinned value is out of the
  // ranges of ValidateReportedParams.
  absl::Status Validate() const;
};

// Why `worker` cannot serve in a cluster with `pin` and adopted parameters
// `cluster` (nullopt: none adopted yet): "<field>: the worker reports X, the
// cluster's is Y" (or "..., --flag says Y"). Empty when it agrees.
std::string Disagreement(const ClusterParams& worker, const ClusterParamsPin& pin,
                         const std::optional<ClusterParams>& cluster);

// The vote among a pool's workers. Each worker that answered its polls with
// valid parameters (and a loaded tokenizer) has a vote; a worker whose polls
// keep failing keeps its vote but is not `reachable`. Elect() adopts the
// parameters of the largest group of reachable voters that agrees with the
// pin; ties go to the group with more voters in all, then to the parameters
// already adopted, then to the group reported first. The adopted
// parameters are kept while no vote agrees with the pin (and until Clear()).
//
// Not thread-safe: the pool guards it with its own lock.
class ClusterVote {
 public:
  explicit ClusterVote(ClusterParamsPin pin) : pin_(std::move(pin)) {}

  const ClusterParamsPin& pin() const { return pin_; }

  // The worker in `slot` reports `params` (valid) with its tokenizer
  // `text`; it is reachable. Its "reported since" time restarts when its
  // parameters change.
  void Set(WorkerSlot slot, const ClusterParams& params, std::shared_ptr<const ModelText> text,
           absl::Time now);
  // The worker's polls failed (false) or succeed again (true); no-op
  // without a vote.
  void SetReachable(WorkerSlot slot, bool reachable);
  void Erase(WorkerSlot slot);
  // Forgets every vote and the adopted parameters (the pool is empty: a new
  // set of workers may serve another model).
  void Clear();

  // Re-runs the election. True when the adopted parameters changed.
  bool Elect();

  const std::optional<ClusterParams>& adopted() const { return adopted_; }
  // The adopted model's tokenizer: a voter's for those parameters.
  const std::shared_ptr<const ModelText>& adopted_text() const { return adopted_text_; }
  // Reachable voters for the adopted parameters, and reachable voters.
  int adopted_votes() const { return adopted_votes_; }
  int reachable_votes() const;
  // A loaded tokenizer with this hash (any voter's, or the adopted one):
  // saves fetching the same files again. Null when none.
  std::shared_ptr<const ModelText> FindText(const std::string& tokenizer_hash) const;

 private:
  struct Entry {
    WorkerSlot slot;
    ClusterParams params;
    std::shared_ptr<const ModelText> text;
    absl::Time since;
    bool reachable = true;
  };
  Entry* Find(WorkerSlot slot);

  const ClusterParamsPin pin_;
  std::vector<Entry> votes_;  // few: one per worker
  std::optional<ClusterParams> adopted_;
  std::shared_ptr<const ModelText> adopted_text_;
  int adopted_votes_ = 0;
};

}  // namespace tessera::router
