// Checking a shared secret that a gRPC call carries in one metadata entry
// (`authorization: Bearer <key>` for the router's client API key and admin
// token, `x-tessera-cluster-token: <token>` between the router and its
// workers), and the loopback tests that decide when a secret may be omitted.
//
// Tessera's servers run plaintext gRPC by default (InsecureServerCredentials),
// where gRPC's AuthMetadataProcessor cannot be installed, so each protected
// handler calls MetadataSecret::Check first. Services that never call it
// (grpc.health.v1, reflection) stay open.
//
// Thread-safe: immutable after construction; the free functions are pure.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace tessera::api {

// Compares two secrets in time that depends only on their lengths, not on
// where they first differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// True when `host` (as given to --host / --admin-host) only accepts
// connections from this machine: "localhost", 127.0.0.0/8, ::1 (with or
// without brackets).
bool IsLoopbackHost(absl::string_view host);

// True when `peer` (grpc::ServerContextBase::peer(): "ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000", "ipv6:%5B::1%5D:5000", "unix:/path") is a connection
// from this machine: a loopback address or a Unix socket. False for
// anything it cannot parse.
bool IsLoopbackPeer(absl::string_view peer);

// One secret in one metadata entry.
class MetadataSecret {
 public:
  // `key`: the metadata key (lowercase, e.g. "authorization"); `prefix`: what
  // precedes the secret in the value ("Bearer ", or ""); `secret` empty:
  // disabled, every call passes; `what` names the secret in error messages
  // (e.g. "the router's --api-key").
  MetadataSecret(std::string key, std::string prefix, std::string secret, std::string what);

  bool enabled() const { return !expected_.empty(); }
  const std::string& key() const { return key_; }

  // OK when disabled or when the call carries `key: <prefix><secret>`;
  // UNAUTHENTICATED otherwise. The message says what is missing or that the
  // value does not match, never the expected secret nor the value sent.
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // The same check of the entry's value (nullopt: the call has none), for
  // transports other than gRPC (an HTTP `Authorization` header).
  grpc::Status CheckValue(std::optional<absl::string_view> value) const;

 private:
  std::string key_;
  std::string prefix_;
  std::string expected_;  // prefix + secret, or empty when disabled
  std::string what_;
};

}  // namespace tessera::api
