// The fake worker's gRPC services (tessera.v1.Worker and tessera.v1.Llm's
// ListModels) over a shared FakeWorker::State. Test-only; handlers never block.
#pragma once

#include <memory>

#include "grpcpp/grpcpp.h"
#include "tests/router/fake_worker_state.h"

namespace tessera::router::testing {

std::unique_ptr<grpc::Service> MakeFakeWorkerService(std::shared_ptr<FakeWorker::State> state);
std::unique_ptr<grpc::Service> MakeFakeLlmService(std::shared_ptr<FakeWorker::State> state);

}  // namespace tessera::router::testing
