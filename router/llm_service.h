// tessera.v1.Llm on the router: Generate relays a worker's stream (see
// router/generate_relay.h); ListModels and Tokenize answer from the pool's
// model_info() (UNAVAILABLE until a worker has reported its model).
//
// Generate, before placement: the --api-key check, then RequestIntake
// (router/request_intake.h: the model name, the workers' limits, text and
// chat prompts tokenized with the workers' tokenizer, request id, block
// hashes), shared with the OpenAI HTTP API.
//
// Thread-safe: handlers run on gRPC threads.
#pragma once

#include "grpcpp/grpcpp.h"
#include "router/auth.h"
#include "router/generate_relay.h"
#include "router/request_intake.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::router {

struct LlmServiceOptions {
  RelayEnvironment relay;            // pool, admission, counters, tracker, retries
  const BearerAuth* auth = nullptr;  // --api-key (may be disabled); required
  RequestIntake* intake = nullptr;   // model, validation, tokenization; required
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
  const LlmServiceOptions options_;
};

}  // namespace tessera::router
