// The step plan: what every rank of a replica runs in one engine step. The
// leader builds it from the scheduler's output; it is broadcast as a
// tessera.v1.StepPlan message; each rank views it as a ModelInput.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>

#include "tessera/v1/step_plan.pb.h"
#include "worker/engine/scheduler.h"
#include "worker/model/llama.h"

namespace tessera {

// Fills `plan` (cleared first) for `out`: per scheduled sequence its tokens
// [num_computed, num_computed + num_tokens), their positions and KV slots,
// its block table, and a logits row when the sequence samples this step.
void BuildStepPlan(const SchedulerOutput& out, int block_size, int64_t step, v1::StepPlan* plan);

// Views the plan's arrays as model input tensors (no copy): valid while
// `plan` lives and is not modified.
ModelInput ModelInputFromPlan(const v1::StepPlan& plan);

}  // namespace tessera
