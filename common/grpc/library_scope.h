// Holds the gRPC library initialised for a binary's main() and shuts it down
// on main's own thread at the end, so that gRPC's background threads are
// joined before exit() runs the atexit handlers.
//
// Without it the last gRPC object may go on a gRPC thread (a callback), and
// that grpc_shutdown finishes on a detached thread that can still run while
// exit() runs the atexit handlers. grpc_shutdown_blocking, unlike
// grpc_shutdown in some gRPC versions, always cleans up on the calling thread.
// (It does not cure every exit-order problem: OpenSSL's per-thread state of a
// gRPC thread can still outlive OpenSSL's atexit cleanup, grpc/grpc#38539;
// tests/sanitizers/lsan.supp.)
//
// Declare it in main() before any gRPC object (credentials, servers,
// channels), so that it is destroyed after all of them.
#pragma once

#include "grpc/grpc.h"

namespace tessera::rpc {

class GrpcLibraryScope {
 public:
  GrpcLibraryScope() { grpc_init(); }
  ~GrpcLibraryScope() { grpc_shutdown_blocking(); }
  GrpcLibraryScope(const GrpcLibraryScope&) = delete;
  GrpcLibraryScope& operator=(const GrpcLibraryScope&) = delete;
};

}  // namespace tessera::rpc
