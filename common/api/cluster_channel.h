// Transport for the cluster's internal calls (router <-> workers), from a
// ClusterCredentials (cluster_auth.h):
//   - server credentials: plaintext, or TLS with this process's certificate
//     that asks every client for a certificate and verifies the ones sent
//     against --tls-ca (ClusterAuth::Check then refuses calls without one,
//     while health checks still connect without a certificate);
//   - channels: plaintext, or TLS with this process's certificate as the
//     client certificate and --tls-ca as the only trusted root; with a token,
//     every call on the channel carries `x-tessera-cluster-token`.
// TLS checks the server's name: the host of the target address must be in
// its certificate (a DNS or IP subject alternative name).
//
// Thread-safe: pure functions; the channels are gRPC's (thread-safe).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/cluster_auth.h"
#include "grpcpp/grpcpp.h"

namespace tessera::api {

std::shared_ptr<grpc::ServerCredentials> ClusterServerCredentials(const ClusterCredentials& c);

std::shared_ptr<grpc::ChannelCredentials> ClusterChannelCredentials(const ClusterCredentials& c);

// TLS for a client of a TLS port that is not a cluster peer (the `tessera`
// CLI to the router's client port): trusts only the PEM CA bundle at
// `ca_path`, and presents the certificate at `cert_path` with its key at
// `key_path` when they are given (both or neither). INVALID_ARGUMENT naming
// the flag (--tls-ca, --tls-cert, --tls-key) when a file cannot be read, is
// not PEM, or only one of cert and key is given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientTlsCredentials(
    const std::string& ca_path, const std::string& cert_path, const std::string& key_path);

// A channel to `target` (host:port) for cluster calls; `args` as for
// grpc::CreateCustomChannel.
std::shared_ptr<grpc::Channel> CreateClusterChannel(const std::string& target,
                                                    const ClusterCredentials& c,
                                                    const grpc::ChannelArguments& args = {});

}  // namespace tessera::api
