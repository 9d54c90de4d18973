// Bearer-token checks for the router's gRPC services and HTTP API.
//
// The router serves plaintext gRPC (InsecureServerCredentials), where gRPC's
// AuthMetadataProcessor cannot be installed, so each protected handler calls
// BearerAuth::Check first (a per-handler check). Unprotected services
// (grpc.health.v1, reflection) never call it and stay open.
//
// Thread-safe: immutable after construction.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace tessera::router {

// Compares two secrets in time that depends only on their lengths, not on
// where they first differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class BearerAuth {
 public:
  // `token` empty: every call is allowed. `what` names the secret in error
  // messages (e.g. "--api-key").
  BearerAuth(std::string token, std::string what);

  bool enabled() const { return !expected_.empty(); }

  // OK when disabled or when the call carries metadata
  // `authorization: Bearer <token>`; UNAUTHENTICATED otherwise (the message
  // says what is missing or wrong, never the expected token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // The same check of an `Authorization` header value (HTTP): nullopt when
  // the request has none.
  grpc::Status CheckAuthorization(std::optional<absl::string_view> authorization) const;

 private:
  std::string expected_;  // "Bearer <token>", or empty when disabled
  std::string what_;
};

// True when `host` (as given to --admin-host) only accepts connections from
// this machine: "localhost", 127.0.0.0/8, ::1 (with or without brackets).
bool IsLoopbackHost(absl::string_view host);

}  // namespace tessera::router
