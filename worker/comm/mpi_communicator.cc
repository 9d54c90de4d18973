#include "worker/comm/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sanitizers.h"
#include "common/status_macros.h"

#if TESSERA_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace {

// Open MPI loads its components (dlopen) in MPI_Init and unloads them in
// MPI_Finalize; what they and the libraries they bring allocate there is never
// freed, and once unloaded LeakSanitizer cannot name the module (nor can a
// suppression file match it). Allocations made inside these calls (and in
// MPI_Comm_dup: a communicator broken by a timeout is abandoned, never freed)
// are not leak-checked in the sanitizer build; everything Tessera allocates is.
struct MpiLibraryAllocations {
#if TESSERA_ASAN
  __lsan::ScopedDisabler disabler;
#endif
};

}  // namespace

namespace tessera {
namespace {

using comm_internal::CheckAllReduceInput;
using comm_internal::PrepareGatherOutput;

// Largest element count one MPI call is given (counts are `int`).
constexpr int64_t kMaxChunk = int64_t{1} << 30;
// Timed waits spin on MPI_Test this long before sleeping between tests.
constexpr auto kSpinFor = std::chrono::microseconds(200);
constexpr auto kPollSleep = std::chrono::microseconds(20);
// A wait this long means the rank is idle (e.g. a follower between requests):
// poll slowly, trading up to a millisecond on the first step after idleness
// for a follower that does not burn a core while the replica has no work.
constexpr auto kIdleAfter = std::chrono::milliseconds(5);
constexpr auto kIdlePollSleep = std::chrono::milliseconds(1);

absl::StatusOr<MPI_Datatype> ElementType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kFloat16:
    case DType::kBFloat16:
      return MPI_UINT16_T;
    case DType::kInt32:
      return MPI_INT32_T;
    case DType::kInt64:
      return MPI_INT64_T;
  }
  return absl::InvalidArgumentError("unknown dtype");
}

bool MpiUsable() {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, int rank, int size, bool nonblocking,
                  std::chrono::milliseconds timeout)
      : comm_(comm), rank_(rank), size_(size), nonblocking_(nonblocking), timeout_(timeout) {}

  ~MpiCommunicator() override {
    // A broken communicator may have a collective in flight: leave it be.
    if (!broken_ && MpiUsable()) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  absl::Status AllReduceSum(Tensor& t) override {
    RETURN_IF_ERROR(CheckUsable("AllReduceSum"));
    RETURN_IF_ERROR(CheckAllReduceInput(t));
    RETURN_IF_ERROR(CheckCpu("AllReduceSum", t));
    float* data = t.data_as<float>();
    for (int64_t done = 0, total = t.numel(); done < total; done += kMaxChunk) {
      const int count = static_cast<int>(std::min(kMaxChunk, total - done));
      RETURN_IF_ERROR(Run(
          "MPI_Allreduce",
          [&] {
            return MPI_Allreduce(MPI_IN_PLACE, data + done, count, MPI_FLOAT, MPI_SUM, comm_);
          },
          [&](MPI_Request* req) {
            return MPI_Iallreduce(MPI_IN_PLACE, data + done, count, MPI_FLOAT, MPI_SUM, comm_, req);
          }));
    }
    return absl::OkStatus();
  }

  absl::Status AllGather(const Tensor& in, Tensor& out) override {
    RETURN_IF_ERROR(CheckUsable("AllGather"));
    RETURN_IF_ERROR(CheckCpu("AllGather", in));
    if (in.data() == nullptr && in.numel() > 0) {
      return absl::InvalidArgumentError("AllGather: input is unallocated");
    }
    RETURN_IF_ERROR(PrepareGatherOutput(in, size_, out));
    if (in.numel() > INT_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("AllGather: ", in.numel(), " elements per rank is over MPI's int count"));
    }
    ASSIGN_OR_RETURN(MPI_Datatype type, ElementType(in.dtype()));
    const int count = static_cast<int>(in.numel());
    if (count == 0) return absl::OkStatus();
    return Run(
        "MPI_Allgather",
        [&] { return MPI_Allgather(in.data(), count, type, out.data(), count, type, comm_); },
        [&](MPI_Request* req) {
          return MPI_Iallgather(in.data(), count, type, out.data(), count, type, comm_, req);
        });
  }

  absl::Status Broadcast(std::string& bytes, int root) override {
    RETURN_IF_ERROR(CheckUsable("Broadcast"));
    if (root < 0 || root >= size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("Broadcast: root ", root, " is not a rank (size ", size_, ")"));
    }
    uint64_t length = rank_ == root ? bytes.size() : 0;
    RETURN_IF_ERROR(Run(
        "MPI_Bcast", [&] { return MPI_Bcast(&length, 1, MPI_UINT64_T, root, comm_); },
        [&](MPI_Request* req) { return MPI_Ibcast(&length, 1, MPI_UINT64_T, root, comm_, req); }));
    if (rank_ != root) bytes.resize(length);
    const int64_t total = static_cast<int64_t>(length);
    for (int64_t done = 0; done < total; done += kMaxChunk) {
      const int count = static_cast<int>(std::min(kMaxChunk, total - done));
      char* data = bytes.data() + done;
      RETURN_IF_ERROR(Run(
          "MPI_Bcast", [&] { return MPI_Bcast(data, count, MPI_CHAR, root, comm_); },
          [&](MPI_Request* req) { return MPI_Ibcast(data, count, MPI_CHAR, root, comm_, req); }));
    }
    return absl::OkStatus();
  }

  absl::Status Barrier() override {
    RETURN_IF_ERROR(CheckUsable("Barrier"));
    return Run(
        "MPI_Barrier", [&] { return MPI_Barrier(comm_); },
        [&](MPI_Request* req) { return MPI_Ibarrier(comm_, req); });
  }

 private:
  absl::Status CheckUsable(absl::string_view op) const {
    if (broken_) {
      return absl::FailedPreconditionError(
          absl::StrCat(op, ": the MPI communicator is broken by an earlier error or timeout (rank ",
                       rank_, "); the ranks are out of step"));
    }
    return absl::OkStatus();
  }

  static absl::Status CheckCpu(absl::string_view op, const Tensor& t) {
    if (t.device() != Device::kCpu) {
      return absl::UnimplementedError(
          absl::StrCat(op, " (mpi): device tensors need the host-staged path"));
    }
    return absl::OkStatus();
  }

  // Runs one collective: `blocking()`, or in the non-blocking flavour
  // `start(&request)` then a wait bounded by the timeout (if any). Any failure
  // breaks the communicator.
  template <typename Blocking, typename Start>
  absl::Status Run(const char* call, Blocking blocking, Start start) {
    absl::Status status;
    if (!nonblocking_) {
      status = MpiErrorToStatus(call, blocking());
    } else {
      MPI_Request request = MPI_REQUEST_NULL;
      // "MPI_Bcast" -> "MPI_Ibcast", "MPI_Allreduce" -> "MPI_Iallreduce".
      const std::string icall =
          absl::StrCat("MPI_I", std::string(1, absl::ascii_tolower(call[4])), call + 5);
      status = MpiErrorToStatus(icall, start(&request));
      if (status.ok()) status = Wait(icall, &request);
    }
    if (!status.ok()) broken_ = true;
    return status;
  }

  absl::Status Wait(absl::string_view call, MPI_Request* request) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = timeout_.count() > 0 ? start + timeout_ : start;
    while (true) {
      int done = 0;
      RETURN_IF_ERROR(MpiErrorToStatus("MPI_Test", MPI_Test(request, &done, MPI_STATUS_IGNORE)));
      if (done) return absl::OkStatus();
      const auto now = std::chrono::steady_clock::now();
      if (timeout_.count() > 0 && now >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(call, " did not complete within ", timeout_.count(), " ms on rank ", rank_,
                         " of ", size_, ": a rank is dead, hung or out of step"));
      }
      if (now - start > kIdleAfter) {
        std::this_thread::sleep_for(kIdlePollSleep);
      } else if (now - start > kSpinFor) {
        std::this_thread::sleep_for(kPollSleep);
      }
    }
  }

  MPI_Comm comm_;
  const int rank_;
  const int size_;
  const bool nonblocking_;                   // the same on every rank
  const std::chrono::milliseconds timeout_;  // this rank's; 0 = none
  bool broken_ = false;
};

std::atomic<bool> g_session_alive{false};

}  // namespace

absl::Status MpiErrorToStatus(absl::string_view call, int code) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
    std::strcpy(text, "unknown MPI error");
    length = static_cast<int>(std::strlen(text));
  }
  return absl::InternalError(
      absl::StrCat(call, " failed: ", absl::string_view(text, length), " (MPI error ", code, ")"));
}

absl::StatusOr<std::unique_ptr<Communicator>> MakeMpiCommunicator(
    const MpiCommunicatorOptions& options) {
  if (!MpiUsable()) {
    return absl::FailedPreconditionError(
        "MakeMpiCommunicator: MPI is not initialised (create an MpiSession first)");
  }
  if (options.timeout.count() < 0) {
    return absl::InvalidArgumentError("MakeMpiCommunicator: timeout must be >= 0");
  }
  MPI_Comm comm = MPI_COMM_NULL;
  int dup_rc = MPI_SUCCESS;
  {
    // A communicator that a timeout broke is abandoned, not freed (~MpiCommunicator).
    [[maybe_unused]] MpiLibraryAllocations exempt;  // empty without ASan
    dup_rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  }
  RETURN_IF_ERROR(MpiErrorToStatus("MPI_Comm_dup", dup_rc));
  int rank = 0;
  int size = 0;
  // Blocking and non-blocking collectives do not match each other, so the
  // ranks agree on one flavour: non-blocking as soon as any rank has a timeout.
  int nonblocking = options.timeout.count() > 0 ? 1 : 0;
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(MpiErrorToStatus("MPI_Comm_set_errhandler",
                                     MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN)));
    RETURN_IF_ERROR(MpiErrorToStatus("MPI_Comm_rank", MPI_Comm_rank(comm, &rank)));
    RETURN_IF_ERROR(MpiErrorToStatus("MPI_Comm_size", MPI_Comm_size(comm, &size)));
    return MpiErrorToStatus("MPI_Allreduce",
                            MPI_Allreduce(MPI_IN_PLACE, &nonblocking, 1, MPI_INT, MPI_MAX, comm));
  }();
  if (!status.ok()) {
    MPI_Comm_free(&comm);
    return status;
  }
  return std::make_unique<MpiCommunicator>(comm, rank, size, nonblocking != 0, options.timeout);
}

absl::StatusOr<std::unique_ptr<MpiSession>> MpiSession::Init(int* argc, char*** argv) {
  if (g_session_alive.exchange(true)) {
    return absl::FailedPreconditionError("MpiSession::Init: a session already exists");
  }
  std::unique_ptr<MpiSession> session(new MpiSession());  // releases the flag on error paths
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    return absl::FailedPreconditionError("MpiSession::Init: MPI was already finalised");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    int rc = MPI_SUCCESS;
    {
      [[maybe_unused]] MpiLibraryAllocations exempt;  // empty without ASan
      rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    }
    RETURN_IF_ERROR(MpiErrorToStatus("MPI_Init_thread", rc));
    session->owns_mpi_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
      return absl::InternalError(absl::StrCat(
          "MPI_Init_thread: MPI_THREAD_SERIALIZED requested, the library provides level ",
          provided));
    }
  }
  RETURN_IF_ERROR(MpiErrorToStatus("MPI_Comm_set_errhandler",
                                   MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)));
  RETURN_IF_ERROR(
      MpiErrorToStatus("MPI_Comm_rank", MPI_Comm_rank(MPI_COMM_WORLD, &session->world_rank_)));
  RETURN_IF_ERROR(
      MpiErrorToStatus("MPI_Comm_size", MPI_Comm_size(MPI_COMM_WORLD, &session->world_size_)));
  MPI_Comm local = MPI_COMM_NULL;
  RETURN_IF_ERROR(MpiErrorToStatus(
      "MPI_Comm_split_type",
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local)));
  absl::Status status =
      MpiErrorToStatus("MPI_Comm_rank", MPI_Comm_rank(local, &session->local_rank_));
  if (status.ok()) {
    status = MpiErrorToStatus("MPI_Comm_size", MPI_Comm_size(local, &session->local_size_));
  }
  MPI_Comm_free(&local);
  RETURN_IF_ERROR(status);
  return session;
}

MpiSession::~MpiSession() {
  if (owns_mpi_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
#if TESSERA_ASAN
      // The leak check, now rather than at exit: MPI_Finalize unloads Open
      // MPI's plug-ins, after which their allocations (a few bytes in its
      // event library) have no module name that tests/sanitizers/lsan.supp
      // could match. Tessera's own objects are gone or reachable by now.
      __lsan_do_leak_check();
#endif
      [[maybe_unused]] MpiLibraryAllocations exempt;  // empty without ASan
      MPI_Finalize();
    }
  }
  g_session_alive.store(false);
}

void MpiSession::Abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

}  // namespace tessera
