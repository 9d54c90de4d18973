// Bearer-token checks for the router's gRPC services and HTTP API: the
// client API key (--api-key: Llm, HTTP) and the admin token (--admin-token:
// Admin). A per-handler check (see common/api/secret_check.h); services that
// never call it (grpc.health.v1, reflection) stay open. The cluster token
// that guards Registry is api::ClusterAuth (common/api/cluster_auth.h).
//
// Thread-safe: immutable after construction.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "common/api/secret_check.h"
#include "grpcpp/grpcpp.h"

namespace tessera::router {

using api::ConstantTimeEquals;
using api::IsLoopbackHost;

class BearerAuth {
 public:
  // `token` empty: every call is allowed. `what` names the secret in error
  // messages (e.g. "--api-key").
  BearerAuth(std::string token, std::string what);

  bool enabled() const { return secret_.enabled(); }

  // OK when disabled or when the call carries metadata
  // `authorization: Bearer <token>`; UNAUTHENTICATED otherwise (the message
  // says what is missing or wrong, never the expected token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // The same check of an `Authorization` header value (HTTP): nullopt when
  // the request has none.
  grpc::Status CheckAuthorization(std::optional<absl::string_view> authorization) const;

 private:
  api::MetadataSecret secret_;
};

}  // namespace tessera::router
