#include "common/grpc/parse_error_interceptor.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Only for methods with one request message (unary and server-streaming):
// there the server reads exactly one message before the handler runs, and a
// null one means it did not parse. (A streaming read also reports a null
// message at the end of the client's stream.)
class ParseErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ParseErrorInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsable_ = true;
    }
    // gRPC's handler for a request that did not parse answers UNIMPLEMENTED.
    if (unparsable_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      methods->ModifySendStatus(UnparsableRequestStatus(method_));
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  bool unparsable_ = false;  // hooks of one call run one at a time
};

}  // namespace

grpc::experimental::Interceptor* ParseErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (info->type()) {
    case Type::UNARY:
    case Type::SERVER_STREAMING:
      return new ParseErrorInterceptor(info->method() == nullptr ? "" : info->method());
    case Type::CLIENT_STREAMING:
    case Type::BIDI_STREAMING:
      return nullptr;  // no interceptor for this call
  }
  return nullptr;
}

grpc::Status UnparsableRequestStatus(const std::string& method) {
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat("the request message", method.empty() ? "" : absl::StrCat(" of ", method),
                   " is not valid: it could not be parsed (invalid UTF-8 in a string field, or "
                   "malformed protobuf data)"));
}

}  // namespace tessera::rpc
