// The cluster credential: what a router and its workers use to trust each
// other, apart from the clients' API key.
//   - a shared token (--cluster-token, env TESSERA_CLUSTER_TOKEN), sent on
//     every router -> worker and worker -> router call as metadata
//     `x-tessera-cluster-token: <token>` (cluster_channel.h adds it);
//   - optionally mutual TLS (--tls-cert/--tls-key/--tls-ca): each side
//     presents a certificate signed by the cluster's CA.
// Servers check it per handler with ClusterAuth::Check (the Worker and Llm
// services of a worker, Registry on the router); grpc.health.v1 and server
// reflection never call it and stay open.
//
// Thread-safe: ClusterCredentials is a value; ClusterAuth is immutable after
// construction.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/api/secret_check.h"
#include "grpcpp/grpcpp.h"

namespace tessera::api {

// The metadata key that carries the cluster token.
inline constexpr char kClusterTokenKey[] = "x-tessera-cluster-token";

struct ClusterCredentials {
  std::string token;  // empty: no token
  // mTLS, PEM contents: all three or none.
  std::string tls_cert;  // this process's certificate chain (server and client)
  std::string tls_key;   // its private key
  std::string tls_ca;    // the CA every peer's certificate must chain to
  bool tls() const { return !tls_cert.empty(); }
};

// The contents of the PEM file at `path`. INVALID_ARGUMENT naming `flag` and
// the path when it cannot be read or holds no PEM block.
absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag);

// `token` plus the PEM files at the three paths (all empty: no TLS).
// INVALID_ARGUMENT naming the flag when only some paths are given, a file
// cannot be read or is empty.
absl::StatusOr<ClusterCredentials> LoadClusterCredentials(std::string token,
                                                          const std::string& cert_path,
                                                          const std::string& key_path,
                                                          const std::string& ca_path);

// The start-up rule for a server that takes cluster calls on `host`
// (`host_flag` names the flag in the message, `service` what it serves):
// without a token and without mTLS it may only listen on a loopback host.
// INVALID_ARGUMENT saying to set --cluster-token otherwise.
absl::Status CheckClusterListener(absl::string_view host, absl::string_view host_flag,
                                  absl::string_view service, const ClusterCredentials& c);

// The server side of the credential.
class ClusterAuth {
 public:
  // `server` names this server in messages ("this worker", "this router").
  ClusterAuth(const ClusterCredentials& c, std::string server);

  bool token_required() const { return token_.enabled(); }
  bool client_cert_required() const { return client_cert_required_; }

  // OK when the call passes every configured check: with mTLS, a client
  // certificate verified against --tls-ca; with a token, the token; with
  // neither, a peer on this machine (a loopback address or Unix socket).
  // UNAUTHENTICATED with a message saying which credential is missing or
  // wrong (never the expected token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  MetadataSecret token_;
  bool client_cert_required_;
  std::string server_;
};

}  // namespace tessera::api
