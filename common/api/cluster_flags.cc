#include "common/api/cluster_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, cluster_token, "",
          "Shared secret of the router and its workers, sent as 'x-tessera-cluster-token' on "
          "every router<->worker call and required by the workers' ports and the router's "
          "Registry (health and reflection stay open); default $TESSERA_CLUSTER_TOKEN. Without "
          "it (and without mTLS) a worker only listens on loopback and the Registry only takes "
          "calls from this machine");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of this process for mTLS between the router and its workers "
          "(needs --tls-key and --tls-ca)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificate(s) that sign every cluster peer's certificate (mTLS)");

namespace tessera::api {

absl::StatusOr<ClusterCredentials> ClusterCredentialsFromFlags() {
  std::string token = absl::GetFlag(FLAGS_cluster_token);
  if (token.empty()) {
    const char* env = std::getenv("TESSERA_CLUSTER_TOKEN");
    if (env != nullptr) token = env;
  }
  return LoadClusterCredentials(std::move(token), absl::GetFlag(FLAGS_tls_cert),
                                absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_ca));
}

}  // namespace tessera::api
