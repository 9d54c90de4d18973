#include "worker/exec/replica_protocol.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera {
namespace {

absl::Status Send(Communicator& comm, v1::StepPlan::Kind kind) {
  v1::StepPlan plan;
  plan.set_kind(kind);
  std::string bytes = plan.SerializeAsString();
  return comm.Broadcast(bytes, /*root=*/0);
}

}  // namespace

absl::Status SendStepPlan(Communicator& comm, const v1::StepPlan& plan, std::string& scratch) {
  if (comm.size() == 1) return absl::OkStatus();
  plan.SerializeToString(&scratch);
  return comm.Broadcast(scratch, /*root=*/0);
}

absl::Status SendHeartbeat(Communicator& comm) {
  if (comm.size() == 1) return absl::OkStatus();
  RETURN_IF_ERROR(Send(comm, v1::StepPlan::KIND_HEARTBEAT));
  return comm.Barrier();
}

absl::Status SendShutdown(Communicator& comm) {
  if (comm.size() == 1) return absl::OkStatus();
  return Send(comm, v1::StepPlan::KIND_SHUTDOWN);
}

absl::Status RunFollower(ModelExecutor& executor, Communicator& comm) {
  std::string bytes;
  v1::StepPlan plan;
  while (true) {
    RETURN_IF_ERROR(comm.Broadcast(bytes, /*root=*/0));
    if (!plan.ParseFromString(bytes)) {
      return absl::DataLossError(absl::StrCat("rank ", comm.rank(), ": step plan of ", bytes.size(),
                                              " bytes from rank 0 does not parse"));
    }
    switch (plan.kind()) {
      case v1::StepPlan::KIND_SHUTDOWN:
        return executor.Synchronize();
      case v1::StepPlan::KIND_FORWARD:
        RETURN_IF_ERROR(executor.Forward(plan));
        break;
      case v1::StepPlan::KIND_HEARTBEAT:
        RETURN_IF_ERROR(comm.Barrier());
        break;
      case v1::StepPlan::KIND_UNSPECIFIED:
      default:  // proto enums are open: any other value is a protocol error
        return absl::DataLossError(
            absl::StrCat("rank ", comm.rank(), ": step plan of unknown kind ", plan.kind()));
    }
  }
}

}  // namespace tessera
