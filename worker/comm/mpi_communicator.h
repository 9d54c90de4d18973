// The MPI process lifetime (MpiSession) and the "mpi" Communicator: CPU
// tensors over a duplicate of MPI_COMM_WORLD.
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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/comm/communicator.h"

namespace tessera {

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

// The Status for MPI error `code` returned by `call`: INTERNAL, with the call,
// MPI_Error_string's text and the code in the message. OK for MPI_SUCCESS.
absl::Status MpiErrorToStatus(absl::string_view call, int code);

}  // namespace tessera
