// The worker's gRPC services, on the leader (rank 0): tessera.v1.Worker (for
// the router) and tessera.v1.Llm (so a client can use one worker directly).
// Both Generate methods share one implementation (GenerateHandler). Callback
// API: every handler validates synchronously, hands the request to the
// EngineLoop and returns; streams are written from the engine's output path.
//
// Every handler of both services first checks the cluster credential
// (ServiceContext::auth: --cluster-token / mTLS) and answers UNAUTHENTICATED
// without it; grpc.health.v1 and reflection, served beside them, stay open.
//
// Thread-safe: gRPC calls the handlers from its threads; they only use the
// EngineLoop's and KvEventHub's thread-safe interfaces and the immutable
// ModelText and ClusterAuth.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/api/cluster_auth.h"
#include "common/model_text.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"
#include "worker/server/engine_loop.h"
#include "worker/server/kv_event_hub.h"
#include "worker/server/proto_convert.h"

namespace tessera {

struct ServiceContext {
  EngineLoop* loop = nullptr;
  KvEventHub* hub = nullptr;        // null: WatchKvEvents is UNIMPLEMENTED
  const ModelText* text = nullptr;  // tokenizer and chat template
  // The cluster credential every call must carry; null: no check (in-process
  // tests only; tessera-worker always sets it).
  const api::ClusterAuth* auth = nullptr;
  api::RequestLimits limits;
  std::string worker_id;
  int block_size = 16;
  // Starts a drain (stop admission, finish, exit); returns the requests in
  // flight. Called by the Drain RPC.
  std::function<int()> drain;
  // worker_id and drain may be set after the server starts (the id can need
  // the bound port); handlers that read them answer UNAVAILABLE until the
  // owner stores true here, which publishes them (release/acquire).
  std::atomic<bool> ready{false};
  bool IsReady() const { return ready.load(std::memory_order_acquire); }
};

// Generate, shared by both services: validate -> GenerateStream -> Submit.
class GenerateHandler {
 public:
  explicit GenerateHandler(const ServiceContext& context) : context_(context) {}
  // Invalid requests end at once (INVALID_ARGUMENT / NOT_FOUND, no message);
  // a refused admission ends with the loop's status (UNAVAILABLE while
  // draining, RESOURCE_EXHAUSTED when full).
  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* ctx,
                                                           const v1::GenerateRequest* request);

 private:
  const ServiceContext& context_;
  std::atomic<uint64_t> next_id_{0};
};

class WorkerService final : public v1::Worker::CallbackService {
 public:
  explicit WorkerService(const ServiceContext& context) : context_(context), generate_(context) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) override {
    return generate_.Generate(ctx, request);
  }
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* ctx,
                                    const v1::GetLoadRequest* request,
                                    v1::LoadReport* response) override;
  // The tokenizer files and their hash (ModelText::ToProto), for the router.
  grpc::ServerUnaryReactor* GetTokenizer(grpc::CallbackServerContext* ctx,
                                         const v1::GetTokenizerRequest* request,
                                         v1::GetTokenizerResponse* response) override;
  grpc::ServerWriteReactor<v1::KvEventBatch>* WatchKvEvents(
      grpc::CallbackServerContext* ctx, const v1::WatchKvEventsRequest* request) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* ctx, const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;

 private:
  const ServiceContext& context_;
  GenerateHandler generate_;
};

class LlmService final : public v1::Llm::CallbackService {
 public:
  explicit LlmService(const ServiceContext& context) : context_(context), generate_(context) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) override {
    return generate_.Generate(ctx, request);
  }
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  const ServiceContext& context_;
  GenerateHandler generate_;
};

}  // namespace tessera
