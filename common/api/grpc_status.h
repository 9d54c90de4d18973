// The wire layer's status plumbing, shared by the router and the worker:
// absl::Status <-> grpc::Status (the two share their code numbers and
// names), the name of a code for messages, and reactors that end a callback
// RPC at once.
//
// Stateless; every function is thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace tessera::api {

// Same code, same message; a rejection (common/api/rejection.h) attached to
// the one travels as the other's error details, and back.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// "INVALID_ARGUMENT", "UNAVAILABLE", … (absl's spelling, which is gRPC's);
// "UNKNOWN" for a number that is no code.
std::string StatusCodeName(grpc::StatusCode code);

// Finishes a unary callback RPC with `status` and returns its reactor (the
// context's default one), for a handler's `return`.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, grpc::Status status);

// A server-streaming reactor that finishes with `status` before writing
// anything and deletes itself when gRPC is done with it: what a streaming
// handler returns when it refuses the call up front.
template <typename Response>
grpc::ServerWriteReactor<Response>* FinishedWriteReactor(grpc::Status status) {
  class Finished final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Finished(grpc::Status s) { this->Finish(std::move(s)); }
    void OnDone() override { delete this; }
  };
  return new Finished(std::move(status));
}

}  // namespace tessera::api
