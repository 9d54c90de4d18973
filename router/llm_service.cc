#include "router/llm_service.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/api/field_limits.h"
#include "common/api/grpc_status.h"

namespace tessera::router {
namespace {

using api::FinishUnary;
constexpr auto ToGrpc = api::ToGrpcStatus;

}  // namespace

LlmService::LlmService(LlmServiceOptions options) : options_(std::move(options)) {}

grpc::ServerWriteReactor<v1::GenerateResponse>* LlmService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  auto refuse = [this](grpc::Status s) {
    if (options_.relay.observer != nullptr) options_.relay.observer->OnRefused(s.error_code());
    return FinishedGenerateReactor(std::move(s));
  };
  v1::GenerateRequest upstream = *request;
  TenantRef tenant;
  if (options_.tenants != nullptr) {
    absl::StatusOr<TenantRef> t = options_.tenants->Identify(*context, upstream.user());
    if (!t.ok()) return refuse(ToGrpc(t.status()));
    tenant = *std::move(t);
    upstream.set_priority(tenant->ClampPriority(upstream.priority()));
    upstream.clear_user();  // the router's business, not the worker's
  } else if (grpc::Status s = options_.auth->Check(*context); !s.ok()) {
    return refuse(std::move(s));
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = options_.intake->Model();
  if (!model.ok()) return refuse(ToGrpc(model.status()));
  absl::StatusOr<PreparedRequest> prepared =
      options_.intake->Prepare(**model, std::move(upstream), /*fill_max_tokens=*/false);
  if (!prepared.ok()) return refuse(ToGrpc(prepared.status()));
  std::unique_ptr<TenantLease> lease;
  if (tenant != nullptr) {
    absl::StatusOr<std::unique_ptr<TenantLease>> admitted =
        options_.tenants->Admit(std::move(tenant), prepared->prompt_tokens);
    if (!admitted.ok()) {
      if (std::optional<absl::Duration> after = RetryAfter(admitted.status())) {
        context->AddTrailingMetadata("retry-after", std::to_string(RetryAfterSeconds(*after)));
      }
      return refuse(ToGrpc(admitted.status()));
    }
    lease = *std::move(admitted);
  }
  options_.relay.counters->total.fetch_add(1);
  return StartGenerateRelay(options_.relay, context, std::move(prepared->upstream),
                            std::move(prepared->block_hashes),
                            std::move(prepared->client_request_id), std::move(lease));
}

grpc::Status LlmService::CheckCaller(const grpc::CallbackServerContext& context) const {
  if (options_.tenants == nullptr) return options_.auth->Check(context);
  absl::StatusOr<TenantRef> tenant = options_.tenants->Identify(context, "");
  return tenant.ok() ? grpc::Status::OK : ToGrpc(tenant.status());
}

grpc::ServerUnaryReactor* LlmService::Tokenize(grpc::CallbackServerContext* context,
                                               const v1::TokenizeRequest* request,
                                               v1::TokenizeResponse* response) {
  if (grpc::Status s = CheckCaller(*context); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  if (absl::Status s = api::CheckTokenizeRequestSizes(*request); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = options_.intake->Model();
  if (!model.ok()) return FinishUnary(context, ToGrpc(model.status()));
  if (absl::Status s = RequestIntake::CheckModelName(**model, request->model()); !s.ok()) {
    return FinishUnary(context, ToGrpc(s));
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      (*model)->text->tokenizer().Encode(request->text(), request->add_special_tokens());
  if (!ids.ok()) return FinishUnary(context, ToGrpc(ids.status()));
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* LlmService::ListModels(grpc::CallbackServerContext* context,
                                                 const v1::ListModelsRequest* /*request*/,
                                                 v1::ListModelsResponse* response) {
  if (grpc::Status s = CheckCaller(*context); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = options_.intake->Model();
  if (!model.ok()) return FinishUnary(context, ToGrpc(model.status()));
  *response->add_models() = (*model)->info;
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace tessera::router
