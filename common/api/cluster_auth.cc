#include "common/api/cluster_auth.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::api {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot open the file"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read the file"));
  }
  std::string pem = std::move(out).str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": not a PEM file (no '-----BEGIN ' line)"));
  }
  return pem;
}

absl::StatusOr<ClusterCredentials> LoadClusterCredentials(std::string token,
                                                          const std::string& cert_path,
                                                          const std::string& key_path,
                                                          const std::string& ca_path) {
  ClusterCredentials c;
  c.token = std::move(token);
  const int given = !cert_path.empty() + !key_path.empty() + !ca_path.empty();
  if (given == 0) return c;
  if (given != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("mTLS needs all of --tls-cert, --tls-key and --tls-ca; got ",
                     cert_path.empty() ? "" : "--tls-cert ", key_path.empty() ? "" : "--tls-key ",
                     ca_path.empty() ? "" : "--tls-ca ", "only"));
  }
  auto cert = ReadPem(cert_path, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(key_path, "--tls-key");
  if (!key.ok()) return key.status();
  auto ca = ReadPem(ca_path, "--tls-ca");
  if (!ca.ok()) return ca.status();
  c.tls_cert = *std::move(cert);
  c.tls_key = *std::move(key);
  c.tls_ca = *std::move(ca);
  return c;
}

absl::Status CheckClusterListener(absl::string_view host, absl::string_view host_flag,
                                  absl::string_view service, const ClusterCredentials& c) {
  if (!c.token.empty() || c.tls() || IsLoopbackHost(host)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "refusing to serve ", service, " on ", host_flag, " ", host,
      " (not loopback) without a cluster credential: set --cluster-token or "
      "TESSERA_CLUSTER_TOKEN (the same secret on the router and every worker), or mTLS "
      "(--tls-cert/--tls-key/--tls-ca), or use ",
      host_flag, " 127.0.0.1"));
}

ClusterAuth::ClusterAuth(const ClusterCredentials& c, std::string server)
    : token_(kClusterTokenKey, "", c.token, "--cluster-token (TESSERA_CLUSTER_TOKEN)"),
      client_cert_required_(c.tls()),
      server_(std::move(server)) {}

grpc::Status ClusterAuth::Check(const grpc::ServerContextBase& context) const {
  if (client_cert_required_) {
    const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
    // With GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY a certificate that
    // was sent has been verified; the peer is authenticated when it sent one.
    if (auth == nullptr || !auth->IsPeerAuthenticated()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat(server_,
                                       " requires mTLS: connect with a client certificate "
                                       "signed by its --tls-ca"));
    }
  }
  if (token_.enabled()) return token_.Check(context);
  if (client_cert_required_ || IsLoopbackPeer(context.peer())) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::UNAUTHENTICATED,
      absl::StrCat(server_,
                   " has no cluster credential, so it takes cluster calls from this machine "
                   "only; set --cluster-token (or TESSERA_CLUSTER_TOKEN) on it and on its peers"));
}

}  // namespace tessera::api
