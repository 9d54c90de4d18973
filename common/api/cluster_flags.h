// The cluster-credential flags every binary that takes or makes cluster
// calls shares (tessera-router, tessera-worker, tessera-bench):
//   --cluster-token (default $TESSERA_CLUSTER_TOKEN), --tls-cert, --tls-key,
//   --tls-ca.
// Linked only into those binaries (target tessera_cluster_flags). Not
// thread-safe: call from main after the flags are parsed.
#pragma once

#include "absl/status/statusor.h"
#include "common/api/cluster_auth.h"

namespace tessera::api {

// The credentials the flags describe (the files read);
// INVALID_ARGUMENT naming the flag (see LoadClusterCredentials).
absl::StatusOr<ClusterCredentials> ClusterCredentialsFromFlags();

}  // namespace tessera::api
