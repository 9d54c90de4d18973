#include "worker/comm/nccl_check.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace tessera::cuda {
namespace {

absl::string_view ResultName(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "ncclSuccess";
    case ncclUnhandledCudaError:
      return "ncclUnhandledCudaError";
    case ncclSystemError:
      return "ncclSystemError";
    case ncclInternalError:
      return "ncclInternalError";
    case ncclInvalidArgument:
      return "ncclInvalidArgument";
    case ncclInvalidUsage:
      return "ncclInvalidUsage";
    case ncclRemoteError:
      return "ncclRemoteError";
    case ncclInProgress:
      return "ncclInProgress";
    default:
      return "unknown ncclResult_t";
  }
}

}  // namespace

absl::Status NcclStatus(ncclResult_t result, absl::string_view call) {
  if (result == ncclSuccess) return absl::OkStatus();
  if (const size_t paren = call.find('('); paren != absl::string_view::npos) {
    call = call.substr(0, paren);
  }
  std::string message = absl::StrCat(call, " failed: ", ncclGetErrorString(result), " (",
                                     ResultName(result), " = ", static_cast<int>(result), ")");
  // The last error is per thread and says which peer or operation failed.
  if (const char* detail = ncclGetLastError(nullptr); detail != nullptr && detail[0] != '\0') {
    absl::StrAppend(&message, ": ", detail);
  }
  switch (result) {
    case ncclSystemError:
    case ncclRemoteError:
      return absl::UnavailableError(message);
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace tessera::cuda
