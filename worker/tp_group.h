// Tensor-parallel communication among the ranks of one replica (one process
// per GPU / per CPU shard), and the MPI process lifetime.
//
// Communicator: the collectives the model and the engine loop need. All ranks
// must call each collective in the same order with matching arguments (same
// shapes, same root). Not thread-safe: one engine thread per rank calls it.
// Implementations: "single" (one process; every op is a no-op or a copy),
// "mpi" (CPU tensors over a dup of MPI_COMM_WORLD), and for CUDA tensors
// "nccl" and "host-staged" (worker/tp_group_cuda.h). MakeCommunicator picks
// one for a replica.
//
// Failure detection (for a rank that dies or hangs): when any rank creates its
// MPI communicator with a non-zero `timeout`, every rank's collectives run as
// their non-blocking MPI forms (blocking and non-blocking collectives must not
// be mixed), polled with MPI_Test; a rank with a timeout gets DEADLINE_EXCEEDED
// when a collective is not done in time, a rank without one waits forever
// (sleeping between polls rather than spinning). A collective cannot be
// cancelled, so after a timeout or any MPI error the communicator is broken:
// every later call returns FAILED_PRECONDITION, and the process should give up
// (MpiSession::Abort) rather than continue. A leader would typically set a step
// timeout while followers, which wait on Broadcast for the next plan for as
// long as the leader is idle, leave it at 0.
#pragma once

#include <chrono>
#include <memory>
#include <string>

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

// RAII over MPI_Init_thread / MPI_Finalize. Asks for MPI_THREAD_SERIALIZED:
// one thread at a time calls MPI, and that thread may be an engine thread
// other than main() (FUNNELED would tie MPI to the thread that called Init).
// Works when not launched by mpirun (a singleton: world size 1). At most one
// session exists at a time. If MPI was already initialised by someone else,
// the session adopts it and does not finalise it. Destroy communicators before
// the session. Not thread-safe; create it first thing in main().
class MpiSession {
 public:
  // `argc`/`argv` may be null. FAILED_PRECONDITION if a session exists or MPI
  // was already finalised; INTERNAL on MPI errors.
  static absl::StatusOr<std::unique_ptr<MpiSession>> Init(int* argc, char*** argv);
  ~MpiSession();  // MPI_Finalize when this session initialised MPI
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  // Rank and size among the processes on this node (MPI_Comm_split_type
  // SHARED): which local GPU this rank drives.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  // MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job. For a rank
  // that can no longer keep the collectives in step (e.g. after a timeout).
  [[noreturn]] static void Abort(int code);

 private:
  MpiSession() = default;
  bool owns_mpi_ = false;
  int world_rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
};

struct MpiCommunicatorOptions {
  // This rank's limit on each collective; 0 = none. If every rank passes 0,
  // collectives are plain blocking MPI calls (the fastest). Otherwise see the
  // top of this file.
  std::chrono::milliseconds timeout{0};
};

// A communicator over a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN.
// Collective: every rank of the world must call it. FAILED_PRECONDITION when
// MPI is not initialised (create an MpiSession first).
absl::StatusOr<std::unique_ptr<Communicator>> MakeMpiCommunicator(
    const MpiCommunicatorOptions& options = {});

// How the ranks of a replica talk. kAuto: "single" for one rank; for CPU
// tensors "mpi"; for CUDA tensors "nccl", or "host-staged" when several
// ranks share one GPU (NCCL refuses that) or NCCL is not built.
enum class TpBackend { kAuto, kMpi, kNccl, kHostStaged };
// "auto", "mpi", "nccl", "host-staged" (or "host"); INVALID_ARGUMENT otherwise.
absl::StatusOr<TpBackend> ParseTpBackend(absl::string_view name);
absl::string_view TpBackendName(TpBackend backend);

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

// The Status for MPI error `code` returned by `call`: INTERNAL, with the call,
// MPI_Error_string's text and the code in the message. OK for MPI_SUCCESS.
absl::Status MpiErrorToStatus(absl::string_view call, int code);

}  // namespace tessera
