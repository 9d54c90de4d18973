#include "worker/model_executor.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/step_plan.h"

namespace tessera {

absl::Status ModelExecutor::Execute(const v1::StepPlan& plan, Tensor& logits) {
  const ModelInput input = ModelInputFromPlan(plan);
  const int64_t rows = plan.logits_indices_size();
  const int64_t vocab = model_->config().vocab_size;
  if (logits.ndim() != 2 || logits.dim(0) != rows || logits.dim(1) != vocab) {
    logits = Tensor::Empty(DType::kFloat32, {rows, vocab});
  }
  return model_->Forward(input, cache_, logits);
}

absl::Status RunFollower(ModelExecutor& executor, Communicator& comm) {
  std::string bytes;
  v1::StepPlan plan;
  Tensor logits;
  while (true) {
    RETURN_IF_ERROR(comm.Broadcast(bytes, /*root=*/0));
    if (!plan.ParseFromString(bytes)) {
      return absl::DataLossError(absl::StrCat("rank ", comm.rank(), ": step plan of ", bytes.size(),
                                              " bytes from rank 0 does not parse"));
    }
    switch (plan.kind()) {
      case v1::StepPlan::KIND_SHUTDOWN:
        return absl::OkStatus();
      case v1::StepPlan::KIND_FORWARD:
        RETURN_IF_ERROR(executor.Execute(plan, logits));
        break;
      case v1::StepPlan::KIND_HEARTBEAT:
        // The idle leader checking that every rank is alive: a barrier, as a
        // small broadcast can complete at the root without the receivers.
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
