#include "worker/comm/make_communicator.h"

#include "absl/strings/str_cat.h"

#if TESSERA_HAVE_CUDA
#include "worker/comm/cuda_communicators.h"
#endif

namespace tessera {

absl::StatusOr<std::unique_ptr<Communicator>> MakeCommunicator(const MpiSession& session,
                                                               const CommunicatorOptions& options) {
  if (session.world_size() == 1) return MakeSingleProcessCommunicator();
  switch (options.device) {
    case Device::kCpu:
      if (options.backend != TpBackend::kAuto && options.backend != TpBackend::kMpi) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor-parallel backend ", TpBackendName(options.backend),
                         " moves CUDA tensors; a CPU replica uses mpi (or auto)"));
      }
      return MakeMpiCommunicator(options.mpi);
    case Device::kCuda:
#if TESSERA_HAVE_CUDA
      return MakeCudaCommunicator(options.backend, options.mpi);
#else
      return absl::FailedPreconditionError(
          "a CUDA replica needs the CUDA path, which this binary was built without");
#endif
  }
  return absl::InvalidArgumentError("unknown device");
}

}  // namespace tessera
