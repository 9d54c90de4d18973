// tessera-router's command-line flags (defined in flags.cc, linked into the
// binary only) and their translation into RouterServerOptions. Not
// thread-safe: call from main after ParseCommandLine.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/router_server.h"

namespace tessera::router {

// The options the flags describe; --admin-token and --api-key fall back to
// the environment (TESSERA_ADMIN_TOKEN, TESSERA_API_KEY) when empty.
// INVALID_ARGUMENT for values that cannot be used (RouterServer::Start
// checks the rest).
absl::StatusOr<RouterServerOptions> RouterOptionsFromFlags();
// The registration limits and pinned cluster parameters (pool_flags.cc);
// INVALID_ARGUMENT naming the flag for a value that cannot be used.
absl::Status ApplyPoolFlags(WorkerPoolOptions& pool);

std::string PortFileFlag();
std::string LogLevelFlag();
absl::Duration ShutdownTimeoutFlag();

}  // namespace tessera::router
