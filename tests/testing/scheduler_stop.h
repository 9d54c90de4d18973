// For scheduler tests that run without an Engine: what Engine::Step does
// after Scheduler::Update(), the stop-token and length decision
// (StopChecker, as the OutputProcessor makes it) on each output that carries
// a token, and Scheduler::FinishChoice for the choices it ends. Header-only;
// for tests.
#pragma once

#include <span>
#include <vector>

#include "worker/engine/scheduler.h"
#include "worker/engine/stop_checker.h"

namespace tessera::testing {

// Returns `outputs` (copied) with the finish reasons the checker decided; the
// choices that finished are finished in `sched`, their blocks freed.
inline std::vector<SeqOutput> FinishStopped(Scheduler& sched, const StopChecker& stop,
                                            std::span<const SeqOutput> outputs) {
  std::vector<SeqOutput> result(outputs.begin(), outputs.end());
  for (SeqOutput& o : result) {
    if (o.finish_reason != FinishReason::kNone || o.new_tokens.empty()) continue;
    const Sequence* seq = sched.FindChoice(o.request_id, o.index);
    TESSERA_CHECK(seq != nullptr, o.request_id, "/", o.index, ": output of an unknown choice");
    o.finish_reason = stop.Check(StopConditions::Of(seq->params()), o.new_tokens.back(),
                                 o.prompt_tokens, o.completion_tokens);
    if (o.finish_reason != FinishReason::kNone) {
      TESSERA_CHECK(sched.FinishChoice(o.request_id, o.index, o.finish_reason), o.request_id);
    }
  }
  return result;
}

}  // namespace tessera::testing
