// The lower-case words of the wire enums, as the router's request log and
// metrics and the tessera CLI print them. Stateless; thread-safe.
#pragma once

#include "absl/strings/string_view.h"
#include "tessera/v1/admin.pb.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::api {

// "length", "stop", "eos", "abort", "error"; "" for FINISH_REASON_UNSPECIFIED.
absl::string_view FinishReasonWord(v1::FinishReason reason);
// "healthy", "unhealthy", "draining"; "unknown" for STATE_UNSPECIFIED.
absl::string_view WorkerStateWord(v1::WorkerInfo::State state);

}  // namespace tessera::api
