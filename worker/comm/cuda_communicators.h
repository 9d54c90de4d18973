// Communicators for replicas whose activations live on CUDA devices (CUDA
// builds only: include this where TESSERA_HAVE_CUDA). Both wrap an MPI
// communicator over a dup of MPI_COMM_WORLD, which carries Broadcast, Barrier
// and collectives on CPU tensors exactly as "mpi" does (timeouts included);
// they differ in how CUDA tensors move:
//
//   "nccl": NCCL all-reduce / all-gather on the device buffers (float32,
//     float16, bfloat16; all-gather of any dtype), enqueued on the calling
//     thread's current stream without host synchronisation, so CUDA graphs
//     can capture them. One GPU per rank: NCCL refuses two ranks on one GPU.
//     The ncclUniqueId goes from rank 0 to the others over MPI. NCCL has no
//     timeout here: a dead peer shows up as an NCCL error or a hang in the
//     next synchronisation, and the MPI side's timeout covers the plans.
//   "host-staged": copy device -> pinned host (waiting for the stream), MPI
//     collective on the host (half types are summed in float32 and rounded
//     once), copy host -> device (enqueued). Works with any number of ranks
//     per GPU, so tensor-parallel correctness can be tested on a one-GPU
//     machine; slow, and not capturable in a CUDA graph.
//
// Not thread-safe, like every Communicator: one engine thread per rank.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "worker/comm/communicator.h"
#include "worker/comm/mpi_communicator.h"

namespace tessera {

// Collective over MPI_COMM_WORLD. The calling thread's current CUDA device
// must be the rank's. FAILED_PRECONDITION when NCCL is not built; NCCL errors
// name the call and the code.
absl::StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(
    const MpiCommunicatorOptions& options = {});

// Collective over MPI_COMM_WORLD.
absl::StatusOr<std::unique_ptr<Communicator>> MakeHostStagedCommunicator(
    const MpiCommunicatorOptions& options = {});

// MakeCommunicator's CUDA branch: `backend` kAuto picks nccl unless two ranks
// share a GPU (GpuUuidsOfRanks in worker/comm/gpu_peers.h) or NCCL is not
// built, then host-staged (logged, with the reason). kNccl on shared GPUs is
// INVALID_ARGUMENT naming the ranks; kMpi is INVALID_ARGUMENT.
absl::StatusOr<std::unique_ptr<Communicator>> MakeCudaCommunicator(
    TpBackend backend, const MpiCommunicatorOptions& options = {});

}  // namespace tessera
