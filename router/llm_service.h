// tessera.v1.Llm on the router: Generate relays a worker's stream (see
// router/generate_relay.h); ListModels and Tokenize answer from the pool's
// model_info() (UNAVAILABLE until a worker has reported its model).
//
// Generate, before placement: the --api-key check (with `tenants`: the
// request's tenant from its key or `user`, router/tenants.h, and its
// `priority` clamped to the tenant's max_priority), then RequestIntake
// (router/request_intake.h: the model name, the workers' limits, text and
// chat prompts tokenized with the workers' tokenizer, request id, block
// hashes), shared with the OpenAI HTTP API, then the tenant's limits
// (RESOURCE_EXHAUSTED with trailing metadata `retry-after: <seconds>`).
//
// Thread-safe: handlers run on gRPC threads.
#pragma once

#include "grpcpp/grpcpp.h"
#include "router/auth.h"
#include "router/generate_relay.h"
#include "router/request_intake.h"
#include "router/tenants.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::router {

struct LlmServiceOptions {
  RelayEnvironment relay;            // pool, admission, counters, tracker, retries
  const BearerAuth* auth = nullptr;  // --api-key (may be disabled); required
  RequestIntake* intake = nullptr;   // model, validation, tokenization; required
  // Tenants (keys, `user`, limits); null: one default tenant, `auth` checks.
  Tenants* tenants = nullptr;
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
  // The caller's key: `tenants` when set, else `auth`.
  grpc::Status CheckCaller(const grpc::CallbackServerContext& context) const;

  const LlmServiceOptions options_;
};

}  // namespace tessera::router
