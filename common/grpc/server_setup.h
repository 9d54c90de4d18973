// What every Tessera gRPC server gets besides its own services (the router's
// client and admin servers, a worker leader's server), in one call:
//   - exclusive ports: SO_REUSEPORT off (GRPC_ARG_ALLOW_REUSEPORT = 0), so a
//     second server on a port in use fails to start instead of silently
//     sharing it;
//   - requests that do not parse (invalid UTF-8 in a string field) answered
//     with INVALID_ARGUMENT (parse_error_interceptor.h);
//   - server reflection v1alpha (gRPC's plugin) and v1 (reflection_v1.h),
//     with grpc.health.v1's descriptors in the pool so reflection clients
//     can describe the health service.
// Not thread-safe (a ServerBuilder is not); call before BuildAndStart.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_builder.h"

namespace tessera::rpc {

void ConfigureServerBuilder(grpc::ServerBuilder& builder);

// The error for a server that could not listen on `address` ("HOST:PORT");
// `flags` names the flags that chose it ("--host/--port"). UNAVAILABLE,
// naming the address and saying the port is in use (or the host cannot be
// bound).
absl::Status ListenError(absl::string_view address, absl::string_view flags);

// INVALID_ARGUMENT unless `port` is in [0, 65535] (0: a free port), or -1
// when `may_be_off` (the listener is off). Names `flag` and the value.
absl::Status CheckPortFlag(absl::string_view flag, int64_t port, bool may_be_off = false);

}  // namespace tessera::rpc
