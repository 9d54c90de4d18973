// tessera.v1.Llm on the router: Generate relays a worker's stream (see
// router/generate_relay.h); ListModels and Tokenize answer from the pool's
// model_info() (UNAVAILABLE until a worker has reported its model).
//
// Generate, before placement: the --api-key check, the same admission checks
// as the workers, against the limits they report in ModelInfo
// (common/api/request_validation.h: INVALID_ARGUMENT naming the field and the
// limit, NOT_FOUND for another model), text prompts tokenized and chat
// prompts rendered here with the workers' tokenizer and chat template (the
// pool's model_text(), built from Worker.GetTokenizer) and sent on as
// token_ids, an empty request_id replaced by
// "<router prefix>-<counter>", and the prompt's full-block hashes
// (common/block_hash.h) computed for prefix-aware placement.
//
// Thread-safe: handlers run on gRPC threads; the served-model cache is under
// a mutex, everything else is immutable or atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/model_text.h"
#include "grpcpp/grpcpp.h"
#include "router/auth.h"
#include "router/generate_relay.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::router {

struct LlmServiceOptions {
  RelayEnvironment relay;            // pool, admission, counters, tracker, retries
  const BearerAuth* auth = nullptr;  // --api-key (may be disabled); required
  // Generated request ids are "<prefix>-<n>"; empty = "router-<random hex>".
  std::string request_id_prefix;
};

class LlmService final : public v1::Llm::CallbackService {
 public:
  explicit LlmService(LlmServiceOptions options);

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  // The served model and its tokenizer, rebuilt when the pool's model info
  // or tokenizer changes.
  struct ServedModel {
    v1::ModelInfo info;
    std::shared_ptr<const ModelText> text;
  };
  // UNAVAILABLE "no worker has reported its model yet" before one has.
  absl::StatusOr<std::shared_ptr<const ServedModel>> Model();

  const LlmServiceOptions options_;
  const std::string id_prefix_;
  std::atomic<uint64_t> next_id_{0};
  absl::Mutex mu_;
  std::shared_ptr<const ServedModel> model_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::router
