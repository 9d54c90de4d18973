// A server interceptor that answers a request message that does not parse
// with INVALID_ARGUMENT and a message that says so, instead of what gRPC
// 1.51's callback API answers: UNIMPLEMENTED with an empty message (its
// callback handlers drop the deserialization status; server_callback_handlers.h).
// The usual cause is invalid UTF-8 in a proto3 `string` field, which
// protobuf refuses to parse; broken wire data is the other.
//
// How: the interceptor sees the received message at POST_RECV_MESSAGE; a
// null message there means deserialization failed, and at PRE_SEND_STATUS
// the interceptor replaces the handler's status. Calls whose message parsed
// are untouched (one pointer check per call).
//
// Thread-safe: the factory is shared; each call gets its own interceptor.
#pragma once

#include <string>

#include "grpcpp/support/server_interceptor.h"

namespace tessera::rpc {

class ParseErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

// The status a call whose request did not parse ends with, for `method`
// ("/tessera.v1.Llm/Generate").
grpc::Status UnparsableRequestStatus(const std::string& method);

}  // namespace tessera::rpc
