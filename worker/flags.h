// Command-line flags shared by every binary that runs a replica rank
// (tessera-generate, tessera-worker), with vLLM's names where one exists, and
// their conversion into ReplicaOptions. Read once at start-up.
#pragma once

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "worker/comm/make_communicator.h"
#include "worker/replica.h"

ABSL_DECLARE_FLAG(std::string, log_level);

namespace tessera {

// Builds ReplicaOptions from the flags; INVALID_ARGUMENT naming the flag.
// `local_ranks` is the number of ranks sharing this node's cores.
absl::StatusOr<ReplicaOptions> ReplicaOptionsFromFlags(int local_ranks);

// This rank's replica from the flags: the device (--device; on CUDA the GPU
// of this rank's local rank is selected first), the communicator
// (single-process for one rank; otherwise MPI on the CPU, NCCL or
// host-staged on CUDA as --tp-comm says, with `comm_options` for the MPI
// side) and BuildReplica. Collective over the MPI job.
absl::StatusOr<std::unique_ptr<Replica>> BuildReplicaFromFlags(
    const MpiSession& mpi, const MpiCommunicatorOptions& comm_options = {});

}  // namespace tessera
