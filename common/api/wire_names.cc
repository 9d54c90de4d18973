#include "common/api/wire_names.h"

namespace tessera::api {

absl::string_view FinishReasonWord(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_EOS:
      return "eos";
    case v1::FINISH_REASON_ABORT:
      return "abort";
    case v1::FINISH_REASON_ERROR:
      return "error";
    case v1::FINISH_REASON_UNSPECIFIED:
    case v1::FinishReason_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::FinishReason_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
  return "";
}

absl::string_view WorkerStateWord(v1::WorkerInfo::State state) {
  switch (state) {
    case v1::WorkerInfo::STATE_HEALTHY:
      return "healthy";
    case v1::WorkerInfo::STATE_UNHEALTHY:
      return "unhealthy";
    case v1::WorkerInfo::STATE_DRAINING:
      return "draining";
    case v1::WorkerInfo::STATE_UNSPECIFIED:
    case v1::WorkerInfo_State_WorkerInfo_State_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::WorkerInfo_State_WorkerInfo_State_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
  return "unknown";
}

}  // namespace tessera::api
