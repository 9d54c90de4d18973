// Picks and builds the Communicator of one rank of a replica from the device
// its activations live on and the requested backend. Not thread-safe; called
// once per rank at start-up.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/tensor.h"
#include "worker/comm/communicator.h"
#include "worker/comm/mpi_communicator.h"

namespace tessera {

struct CommunicatorOptions {
  Device device = Device::kCpu;  // where the model's activations live
  TpBackend backend = TpBackend::kAuto;
  MpiCommunicatorOptions mpi;  // for "mpi" and the MPI side of the CUDA ones
};

// The communicator of this rank of the MPI job (a size-1 job gets "single"
// whatever the backend). For Device::kCuda the calling thread's CUDA device
// must already be the rank's (SelectCudaDevice): NCCL binds to it, and the
// automatic choice compares the ranks' device UUIDs. Collective over
// MPI_COMM_WORLD when the job has several ranks. INVALID_ARGUMENT for a
// backend that cannot move `device` tensors (e.g. nccl for CPU, mpi for
// CUDA) or nccl on ranks that share a GPU; FAILED_PRECONDITION when the
// backend is not built.
absl::StatusOr<std::unique_ptr<Communicator>> MakeCommunicator(const MpiSession& session,
                                                               const CommunicatorOptions& options);

}  // namespace tessera
