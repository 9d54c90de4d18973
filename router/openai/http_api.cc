#include "router/openai/http_api.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/api/grpc_status.h"
#include "common/api/request_limits.h"
#include "common/logging.h"
#include "router/openai/api_error.h"
#include "router/openai/models_tokenize.h"
#include "router/openai/request.h"
#include "router/openai/response_builder.h"
#include "router/openai/timed_exchange.h"

namespace tessera::router::openai {
namespace {

using http::Exchange;
using http::Header;
using http::Response;

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

Response JsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers.push_back({"content-type", "application/json"});
  r.body = std::move(body);
  return r;
}

// An OpenAI error response; 429 and 503 tell the client when to come back
// (the SDK honours Retry-After and retries those codes).
Response ErrorResponse(const ApiError& error, int64_t retry_after_seconds = 1) {
  Response r = JsonResponse(error.http_status, ErrorBody(error));
  if (error.http_status == 429 || error.http_status == 503) {
    r.headers.push_back({"retry-after", std::to_string(retry_after_seconds)});
  }
  return r;
}

// A status that carries its own Retry-After (a tenant limit) uses it.
void RespondError(Exchange& exchange, const absl::Status& status, bool chat = false) {
  const std::optional<absl::Duration> after = RetryAfter(status);
  exchange.Respond(
      ErrorResponse(FromStatus(status, chat), after.has_value() ? RetryAfterSeconds(*after) : 1));
}

std::optional<absl::string_view> Authorization(const http::Request& request) {
  const std::string_view authorization = request.header("authorization");
  if (authorization.empty()) return std::nullopt;
  return absl::string_view(authorization.data(), authorization.size());
}

// One HTTP generation request: one relay per prompt, their messages turned
// into the response by a ResponseBuilder. Owns itself until every relay has
// ended (the relays hold their clients by raw pointer until End).
class HttpCall : public std::enable_shared_from_this<HttpCall> {
 public:
  HttpCall(std::shared_ptr<Exchange> exchange, const ParsedRequest& request, ResponseMeta meta,
           const Tokenizer* tokenizer, std::shared_ptr<const ServedModel> model)
      : exchange_(std::move(exchange)),
        model_(std::move(model)),
        builder_(request, std::move(meta), tokenizer),
        stream_(request.stream) {}

  // Creates the relays; then Start() runs them.
  void Add(const RelayEnvironment& env, PreparedRequest prepared,
           std::unique_ptr<TenantLease> tenant) {
    auto client = std::make_unique<PromptClient>(this, static_cast<int>(clients_.size()));
    client->relay = CreateGenerateRelay(
        env, std::chrono::system_clock::time_point::max(), std::move(prepared.upstream),
        std::move(prepared.block_hashes), std::move(prepared.client_request_id), std::move(tenant));
    clients_.push_back(std::move(client));
  }

  void Start() {
    self_ = shared_from_this();  // released when the last relay ended
    {
      absl::MutexLock lock(&mu_);
      running_ = static_cast<int>(clients_.size());
    }
    // A client that leaves cancels every relay; each then ends (End).
    std::weak_ptr<HttpCall> weak = weak_from_this();
    exchange_->OnClientClose([weak] {
      if (std::shared_ptr<HttpCall> call = weak.lock()) call->CancelAll();
    });
    for (auto& c : clients_) c->relay->Start(c.get());
  }

 private:
  struct PromptClient final : RelayClient {
    PromptClient(HttpCall* call, int prompt) : call(call), prompt(prompt) {}
    void Deliver(const v1::GenerateResponse* message) override { call->Deliver(*this, *message); }
    void End(grpc::Status status) override { call->End(*this, std::move(status)); }
    HttpCall* const call;
    const int prompt;
    std::shared_ptr<Relay> relay;
  };

  void CancelAll() {
    for (auto& c : clients_) c->relay->Cancel();
  }

  void Deliver(PromptClient& client, const v1::GenerateResponse& message) {
    std::string chunk;
    bool start_stream = false;
    {
      absl::MutexLock lock(&mu_);
      chunk = builder_.OnMessage(client.prompt, message);
      // The stream starts with its first bytes: a message may give none (a
      // token whose text waits for the rest of a UTF-8 sequence).
      if (stream_ && !stream_started_ && !chunk.empty()) {
        stream_started_ = true;
        start_stream = true;
      }
    }
    if (!stream_ || chunk.empty()) {
      client.relay->WriteDone(true);  // kept for the final body / nothing to send
      return;
    }
    if (start_stream) {
      exchange_->StartStream(
          200, {{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}});
    }
    std::shared_ptr<Relay> relay = client.relay;
    exchange_->Write(std::move(chunk), [relay](bool ok) { relay->WriteDone(ok); });
  }

  void End(PromptClient& /*client*/, grpc::Status status) {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      if (!status.ok() && !failure_.has_value()) failure_ = ToAbsl(status);
      last = --running_ == 0;
    }
    if (!status.ok() && !last) {
      CancelAll();  // one prompt failed: the response fails as a whole
      return;
    }
    if (last) Complete();
  }

  // Every relay has ended: the end of the response.
  void Complete() {
    std::optional<absl::Status> failure;
    std::optional<ApiError> engine_error;  // a choice that ended with FINISH_REASON_ERROR
    bool started;
    std::string tail;
    {
      absl::MutexLock lock(&mu_);
      failure = failure_;
      started = stream_started_;
      if (!failure.has_value()) {
        tail = builder_.Finish();
        engine_error = builder_.error();
      } else if (started) {
        tail = ErrorEvent(FromStatus(*failure)) + "data: [DONE]\n\n";
      }
    }
    if (failure.has_value() && !started) {
      RespondError(*exchange_, *failure);
    } else if (!stream_) {
      exchange_->Respond(JsonResponse(engine_error.has_value() ? engine_error->http_status : 200,
                                      std::move(tail)));
    } else {
      if (!started) {
        exchange_->StartStream(
            200, {{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}});
      }
      exchange_->Write(std::move(tail), nullptr);
      exchange_->End();
    }
    // The relays are done with their clients; the exchange's close callback
    // holds only a weak reference.
    self_.reset();
  }

  const std::shared_ptr<Exchange> exchange_;
  const std::shared_ptr<const ServedModel> model_;      // keeps the tokenizer alive
  std::vector<std::unique_ptr<PromptClient>> clients_;  // fixed before Start
  std::shared_ptr<HttpCall> self_;
  absl::Mutex mu_;
  ResponseBuilder builder_ ABSL_GUARDED_BY(mu_);
  const bool stream_;
  bool stream_started_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Status> failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

http::Response ServerErrorResponse(int status, std::string_view message) {
  ApiError error =
      FromStatus(absl::InvalidArgumentError(absl::string_view(message.data(), message.size())));
  error.http_status = status;
  if (status >= 500) error.type = "server_error";
  return ErrorResponse(error);
}

HttpApi::HttpApi(HttpApiOptions options) : options_(std::move(options)) {}

namespace {

// The route label of the HTTP latency histogram: a bounded set.
std::string RouteLabel(const std::string& path) {
  for (const char* route : {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health",
                            "/version", "/tokenize", "/detokenize", "/metrics"}) {
    if (path == route) return path;
  }
  return "other";
}

}  // namespace

void HttpApi::Handle(http::Request request, std::shared_ptr<Exchange> exchange) {
  const std::string& path = request.path;
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (options_.metrics != nullptr) {
    exchange =
        std::make_shared<TimedExchange>(std::move(exchange), RouteLabel(path), options_.metrics);
  }
  // Open: health, version and metrics (load balancers, probes, Prometheus).
  if (path == "/health" && get) return Health(std::move(exchange));
  if (path == "/metrics" && get && options_.metrics != nullptr) {
    return Metrics(std::move(exchange));
  }
  if (path == "/version" && get) {
    return exchange->Respond(
        JsonResponse(200, absl::StrCat(R"({"version":")", TESSERA_VERSION, R"("})")));
  }
  const bool known = path == "/v1/chat/completions" || path == "/v1/completions" ||
                     path == "/v1/models" || path == "/tokenize" || path == "/detokenize";
  if (!known) {
    return RespondError(*exchange,
                        absl::NotFoundError(absl::StrCat("no route ", request.method, " ", path)));
  }
  if (options_.tenants != nullptr) {
    absl::StatusOr<TenantRef> tenant = options_.tenants->Identify(Authorization(request), "");
    if (!tenant.ok()) return RespondError(*exchange, tenant.status());
  } else if (grpc::Status s = options_.auth->CheckAuthorization(Authorization(request)); !s.ok()) {
    return RespondError(*exchange, ToAbsl(s));
  }
  if (path == "/v1/models" && get) return Models(std::move(exchange));
  if (!post) {
    ApiError error = FromStatus(absl::InvalidArgumentError(
        absl::StrCat("method ", request.method, " is not allowed on ", path, "; use POST")));
    error.http_status = 405;
    return exchange->Respond(ErrorResponse(error));
  }
  if (path == "/v1/chat/completions") return Generate(true, request, std::move(exchange));
  if (path == "/v1/completions") return Generate(false, request, std::move(exchange));
  if (path == "/tokenize") return Tokenize(false, request, std::move(exchange));
  return Tokenize(true, request, std::move(exchange));
}

void HttpApi::Generate(bool chat, const http::Request& request,
                       std::shared_ptr<Exchange> exchange) {
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = options_.intake->Model();
  if (!model.ok()) {
    Refused(model.status());
    return RespondError(*exchange, model.status(), chat);
  }
  const ServedModel& served = **model;
  ParseOptions parse_options;
  parse_options.request_id = std::string(request.header("x-request-id"));
  const Endpoint endpoint = chat ? Endpoint::kChat : Endpoint::kCompletions;
  ApiOr<ParsedRequest> parsed = ParseRequest(endpoint, request.body, parse_options);
  if (!parsed.ok()) {
    Refused(absl::InvalidArgumentError(parsed.error().message));
    return exchange->Respond(ErrorResponse(parsed.error()));
  }
  if (absl::Status s = ResolveEchoText(*parsed, served.text->tokenizer()); !s.ok()) {
    Refused(s);
    return RespondError(*exchange, s, chat);
  }
  TenantRef tenant;
  if (options_.tenants != nullptr) {
    absl::StatusOr<TenantRef> t = options_.tenants->Identify(Authorization(request), parsed->user);
    if (!t.ok()) {
      Refused(t.status());
      return RespondError(*exchange, t.status(), chat);
    }
    tenant = *std::move(t);
  }
  std::vector<PreparedRequest> prepared;
  prepared.reserve(parsed->prompts.size());
  for (v1::GenerateRequest& prompt : parsed->prompts) {
    if (tenant != nullptr) {
      prompt.set_priority(tenant->ClampPriority(prompt.priority()));
      prompt.clear_user();  // the router's business, not the worker's
    }
    absl::StatusOr<PreparedRequest> p =
        options_.intake->Prepare(served, std::move(prompt), /*fill_max_tokens=*/true);
    if (!p.ok()) {
      Refused(p.status());
      return RespondError(*exchange, p.status(), chat);
    }
    prepared.push_back(*std::move(p));
  }
  // Each prompt is one request against the tenant's limits; all pass or none.
  std::vector<std::unique_ptr<TenantLease>> leases(prepared.size());
  if (tenant != nullptr) {
    for (size_t i = 0; i < prepared.size(); ++i) {
      absl::StatusOr<std::unique_ptr<TenantLease>> lease =
          options_.tenants->Admit(tenant, prepared[i].prompt_tokens);
      if (!lease.ok()) {
        Refused(lease.status());
        return RespondError(*exchange, lease.status(), chat);  // `leases` are returned
      }
      leases[i] = *std::move(lease);
    }
  }
  ResponseMeta meta;
  meta.id = MakeResponseId(endpoint);
  meta.created = UnixSeconds();
  meta.model = served.names.front();
  auto call = std::make_shared<HttpCall>(std::move(exchange), *parsed, std::move(meta),
                                         &served.text->tokenizer(), *model);
  for (size_t i = 0; i < prepared.size(); ++i) {
    options_.relay.counters->total.fetch_add(1);
    call->Add(options_.relay, std::move(prepared[i]), std::move(leases[i]));
  }
  call->Start();
}

void HttpApi::Refused(const absl::Status& status) {
  if (options_.relay.observer != nullptr) {
    options_.relay.observer->OnRefused(static_cast<grpc::StatusCode>(status.code()));
  }
}

void HttpApi::Metrics(std::shared_ptr<Exchange> exchange) {
  Response r;
  r.headers.push_back({"content-type", std::string(metrics::Registry::kContentType)});
  r.body = options_.metrics->Expose();
  exchange->Respond(std::move(r));
}

void HttpApi::Models(std::shared_ptr<Exchange> exchange) {
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = options_.intake->Model();
  if (!model.ok()) return RespondError(*exchange, model.status());
  exchange->Respond(JsonResponse(200, ModelsBody((*model)->names, (*model)->info, UnixSeconds())));
}

void HttpApi::Health(std::shared_ptr<Exchange> exchange) {
  const v1::ClusterStatus status = options_.relay.pool->Status();
  if (status.healthy() > 0) {
    exchange->Respond(JsonResponse(
        200, absl::StrCat(R"({"status":"ok","healthy_workers":)", status.healthy(), "}")));
  } else {
    Response r = JsonResponse(503, absl::StrCat(R"({"status":"unavailable","workers":)",
                                                status.workers(), R"(,"healthy_workers":0})"));
    r.headers.push_back({"retry-after", "1"});
    exchange->Respond(std::move(r));
  }
}

void HttpApi::Tokenize(bool detokenize, const http::Request& request,
                       std::shared_ptr<Exchange> exchange) {
  absl::StatusOr<std::shared_ptr<const ServedModel>> model = options_.intake->Model();
  if (!model.ok()) return RespondError(*exchange, model.status());
  const ServedModel& served = **model;
  const api::RequestLimits limits = api::FromModelInfo(served.info);
  ApiOr<std::string> body = detokenize
                                ? DetokenizeBody(request.body, *served.text, limits, served.names)
                                : TokenizeBody(request.body, *served.text, limits, served.names);
  if (!body.ok()) return exchange->Respond(ErrorResponse(body.error()));
  exchange->Respond(JsonResponse(200, std::move(*body)));
}

}  // namespace tessera::router::openai
