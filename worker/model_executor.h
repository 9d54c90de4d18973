// Runs step plans through this rank's model shard and KV cache. One per rank;
// used by the leader's engine and by the follower loop alike. Not
// thread-safe: owned by the rank's engine thread.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "tessera/v1/step_plan.pb.h"
#include "worker/model/kv_cache.h"
#include "worker/model/llama.h"
#include "worker/tp_group.h"

namespace tessera {

class ModelExecutor {
 public:
  ModelExecutor(std::unique_ptr<LlamaForCausalLM> model, KvCache cache)
      : model_(std::move(model)), cache_(std::move(cache)) {}

  // Runs the forward pass of `plan` (a KIND_FORWARD plan). `logits` is resized
  // to [logits rows, vocab] and filled on every rank.
  absl::Status Execute(const v1::StepPlan& plan, Tensor& logits);

  const LlamaForCausalLM& model() const { return *model_; }
  const KvCacheShape& cache_shape() const { return cache_.shape(); }

 private:
  std::unique_ptr<LlamaForCausalLM> model_;
  KvCache cache_;
};

// The loop of ranks 1..N-1: receive each step plan from rank 0, run it, until
// a KIND_SHUTDOWN plan arrives (returns OK) or a collective fails (returns
// that error).
absl::Status RunFollower(ModelExecutor& executor, Communicator& comm);

}  // namespace tessera
