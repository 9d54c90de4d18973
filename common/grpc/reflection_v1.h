// gRPC server reflection v1 (grpc.reflection.v1.ServerReflection), which
// current grpcurl, Postman and grpc-cli try before v1alpha; Debian's gRPC
// 1.51 ships only v1alpha (grpcpp/ext/proto_server_reflection_plugin.h).
// Same answers as v1alpha, from the same place: the process's generated
// descriptor pool, which holds every tessera.v1 proto and grpc.health.v1
// (proto/grpc/health/v1/health.proto), and the server's own list of
// services.
//
// Thread-safe: one reactor per stream; the service itself is immutable
// after Bind.
#pragma once

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace tessera::rpc {

class ReflectionV1Service final : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  // `services`: the server's service names (grpc::ServerInitializer's list,
  // which stays valid and complete for the server's life). Call before the
  // server starts.
  void Bind(const std::vector<std::string>* services) { services_ = services; }

  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // The answer to one request; `sent` holds the files already sent on this
  // stream (they are not sent again). For tests and the reactor.
  grpc::reflection::v1::ServerReflectionResponse Answer(
      const grpc::reflection::v1::ServerReflectionRequest& request,
      std::vector<std::string>* sent) const;

 private:
  const std::vector<std::string>* services_ = nullptr;
};

}  // namespace tessera::rpc
