// What every front end of the router (the gRPC Llm service, the OpenAI HTTP
// API) does with a Generate request before the relay, in one place:
//   - the served model: the workers' ModelInfo and ModelText (tokenizer,
//     chat template), from the pool (UNAVAILABLE until a worker reported);
//   - the model name: empty, the workers' model id, or one of the router's
//     --served-model-name aliases (NOT_FOUND otherwise); the worker gets its
//     own id;
//   - the prompt tokenized (text) or rendered and tokenized (chat) with the
//     workers' tokenizer, and every admission check of
//     common/api/request_validation.h against the limits the workers report
//     (INVALID_ARGUMENT naming the field and the limit);
//   - the size limits of common/api/field_limits.h, before anything else;
//   - a random request id ("<prefix>-<32 hex digits>", 128 bits) for every
//     request: the id the worker sees and the router uses internally. The
//     client's own request_id is only a label (request log, the responses'
//     request_id), so a client can neither guess nor take another client's
//     id; and the prompt's full-block hashes (common/block_hash.h) for
//     placement.
//   - a seed (random 64-bit) when the client gave none, and no client-set
//     continuation (router/continuation.h, MakeResumable);
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/model_text.h"
#include "router/worker_pool.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router {

// The model the workers serve, as the router knows it.
struct ServedModel {
  v1::ModelInfo info;                     // the workers' (id, limits)
  std::shared_ptr<const ModelText> text;  // their tokenizer and chat template
  std::vector<std::string> names;         // what clients may call it; names[0] is reported
};

// A request ready for the relay.
struct PreparedRequest {
  v1::GenerateRequest upstream;        // prompt as token ids, model = the workers' id,
                                       // request_id = the router's random id
  std::vector<uint64_t> block_hashes;  // for placement
  int32_t prompt_tokens = 0;
  std::string client_request_id;  // the id the client sent; empty: none
};

struct IntakeOptions {
  // Request ids are "<prefix>-<32 random hex digits>"; empty = "router".
  std::string request_id_prefix;
  // Names clients may use for the model (--served-model-name); the first is
  // the one reported. Empty: the workers' model id.
  std::vector<std::string> served_model_names;
};

class RequestIntake {
 public:
  RequestIntake(WorkerPool* pool, IntakeOptions options);

  // UNAVAILABLE "no worker has reported its model yet" before one has.
  absl::StatusOr<std::shared_ptr<const ServedModel>> Model();

  // OK when `requested` is empty or one of `model`'s names; NOT_FOUND naming
  // the served name otherwise.
  static absl::Status CheckModelName(const ServedModel& model, absl::string_view requested);

  // The checks and conversions above. `fill_max_tokens`: an unset
  // sampling.max_tokens becomes what fits in max_model_len after the prompt
  // (vLLM's OpenAI server); otherwise the gRPC default (16) applies.
  absl::StatusOr<PreparedRequest> Prepare(const ServedModel& model, v1::GenerateRequest request,
                                          bool fill_max_tokens);

 private:
  WorkerPool* const pool_;
  const IntakeOptions options_;
  const std::string id_prefix_;
  absl::Mutex mu_;
  std::shared_ptr<const ServedModel> model_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::router
