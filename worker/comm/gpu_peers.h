// Which ranks of a communicator share a GPU: NCCL refuses two ranks on one
// device, so the communicator choice (and the KV sizing, which splits a
// shared device's memory) needs to know. Not thread-safe: collective calls
// from each rank's one engine thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/comm/communicator.h"

namespace tessera {

// The UUID of every rank's current CUDA device, by rank (so equal entries are
// ranks that share a GPU). Collective over `comm`; uses only its AllGather of
// CPU tensors, so any communicator works.
absl::StatusOr<std::vector<std::string>> GpuUuidsOfRanks(Communicator& comm);
// How many ranks of `comm`, this one included, drive this rank's current
// device. Collective over `comm`.
absl::StatusOr<int> RanksOnThisGpu(Communicator& comm);

}  // namespace tessera
