// Tensor-parallel communication among the ranks of one replica (one process
// per GPU / per CPU shard).
//
// Communicator: the collectives the model and the engine loop need. All ranks
// must call each collective in the same order with matching arguments (same
// shapes, same root). Not thread-safe: one engine thread per rank calls it.
// Implementations: "single" (here: one process; every op is a no-op or a
// copy), "mpi" (worker/comm/mpi_communicator.h: CPU tensors over a dup of
// MPI_COMM_WORLD), and for CUDA tensors "nccl" and "host-staged"
// (worker/comm/cuda_communicators.h). MakeCommunicator
// (worker/comm/make_communicator.h) picks one for a replica.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/tensor.h"

namespace tessera {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Sums `t` element-wise over all ranks, in place; every rank ends with the
  // same values. `t`: the same shape on all ranks; float32 on the CPU; on a
  // CUDA device ("single", "nccl", "host-staged") float32, float16 or
  // bfloat16, enqueued on the calling thread's current stream.
  virtual absl::Status AllReduceSum(Tensor& t) = 0;

  // out[r] = rank r's `in`; out has shape [size(), ...in.shape()] and in's
  // dtype. Every rank passes the same shape and dtype. If `out` is already
  // allocated with exactly that shape and dtype it is written in place; if it
  // is unallocated (default-constructed) it is allocated; anything else is
  // INVALID_ARGUMENT. Any dtype. Device tensors need a preallocated `out` on
  // the same device.
  virtual absl::Status AllGather(const Tensor& in, Tensor& out) = 0;

  // Sends `bytes` (any length, 0 included) from `root` to all ranks; the
  // non-roots' strings are replaced. INVALID_ARGUMENT if root is not a rank.
  virtual absl::Status Broadcast(std::string& bytes, int root) = 0;

  virtual absl::Status Barrier() = 0;

  virtual std::string name() const = 0;  // "single", "mpi", "nccl", "host-staged"

  // Whether the collectives on CUDA tensors only enqueue work on the current
  // stream (no host synchronisation), so a CUDA graph may capture them.
  virtual bool SupportsGraphCapture() const { return false; }
};

// A communicator of size 1 (rank 0): AllReduceSum and Barrier do nothing,
// AllGather copies (CUDA tensors: enqueued on the current stream), Broadcast
// keeps the string.
std::unique_ptr<Communicator> MakeSingleProcessCommunicator();

// How the ranks of a replica talk. kAuto: "single" for one rank; for CPU
// tensors "mpi"; for CUDA tensors "nccl", or "host-staged" when several
// ranks share one GPU (NCCL refuses that) or NCCL is not built.
enum class TpBackend { kAuto, kMpi, kNccl, kHostStaged };
// "auto", "mpi", "nccl", "host-staged" (or "host"); INVALID_ARGUMENT otherwise.
absl::StatusOr<TpBackend> ParseTpBackend(absl::string_view name);
absl::string_view TpBackendName(TpBackend backend);

namespace comm_internal {
// Shared argument checks of the implementations.
// [size, ...in.shape()].
std::vector<int64_t> GatherShape(const Tensor& in, int size);
// Makes `out` a [size, ...in.shape] tensor of in's dtype on in's device:
// allocated when unallocated, validated when already allocated.
absl::Status PrepareGatherOutput(const Tensor& in, int size, Tensor& out);
// float32 (or float16/bfloat16 on a CUDA device), allocated.
absl::Status CheckAllReduceInput(const Tensor& t);
}  // namespace comm_internal

}  // namespace tessera
