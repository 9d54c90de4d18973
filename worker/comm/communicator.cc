#include "worker/comm/communicator.h"

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace tessera {
namespace comm_internal {

std::vector<int64_t> GatherShape(const Tensor& in, int size) {
  std::vector<int64_t> shape;
  shape.reserve(in.ndim() + 1);
  shape.push_back(size);
  shape.insert(shape.end(), in.shape().begin(), in.shape().end());
  return shape;
}

absl::Status PrepareGatherOutput(const Tensor& in, int size, Tensor& out) {
  std::vector<int64_t> shape = GatherShape(in, size);
  if (out.data() == nullptr) {
    if (in.device() != Device::kCpu) {
      return absl::InvalidArgumentError("AllGather: pass a preallocated output for device tensors");
    }
    out = Tensor::Empty(in.dtype(), std::move(shape), in.device());
    return absl::OkStatus();
  }
  if (out.shape() != shape || out.dtype() != in.dtype() || out.device() != in.device()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AllGather: output is ", DTypeName(out.dtype()), out.ShapeString(),
                     ", expected ", DTypeName(in.dtype()), "[", absl::StrJoin(shape, ", "), "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckAllReduceInput(const Tensor& t) {
  const bool device_float = t.device() == Device::kCuda &&
                            (t.dtype() == DType::kFloat16 || t.dtype() == DType::kBFloat16);
  if (t.dtype() != DType::kFloat32 && !device_float) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AllReduceSum: tensor must be float32 (or float16/bfloat16 on a CUDA device), got ",
        DTypeName(t.dtype())));
  }
  if (t.data() == nullptr && t.numel() > 0) {
    return absl::InvalidArgumentError("AllReduceSum: tensor is unallocated");
  }
  return absl::OkStatus();
}

}  // namespace comm_internal

namespace {

using comm_internal::CheckAllReduceInput;
using comm_internal::GatherShape;
using comm_internal::PrepareGatherOutput;

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  absl::Status AllReduceSum(Tensor& t) override { return CheckAllReduceInput(t); }
  absl::Status AllGather(const Tensor& in, Tensor& out) override {
    if (out.data() == nullptr) {  // no copy needed: a [1, ...] view of `in`
      out = in.Reshape(GatherShape(in, 1));
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(PrepareGatherOutput(in, 1, out));
    if (out.data() == in.data() || in.nbytes() == 0) return absl::OkStatus();
    if (in.device() != Device::kCpu) return out.CopyFromAsync(in);  // on the current stream
    std::memcpy(out.data(), in.data(), in.nbytes());
    return absl::OkStatus();
  }
  absl::Status Broadcast(std::string& /*bytes*/, int root) override {
    if (root != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Broadcast: root ", root, " is not a rank of a size-1 communicator"));
    }
    return absl::OkStatus();
  }
  absl::Status Barrier() override { return absl::OkStatus(); }
  std::string name() const override { return "single"; }
  bool SupportsGraphCapture() const override { return true; }
};

}  // namespace

std::unique_ptr<Communicator> MakeSingleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

absl::StatusOr<TpBackend> ParseTpBackend(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "auto") return TpBackend::kAuto;
  if (n == "mpi") return TpBackend::kMpi;
  if (n == "nccl") return TpBackend::kNccl;
  if (n == "host-staged" || n == "host_staged" || n == "host") return TpBackend::kHostStaged;
  return absl::InvalidArgumentError(absl::StrCat("unknown tensor-parallel backend '", name,
                                                 "'; expected auto, mpi, nccl or host-staged"));
}

absl::string_view TpBackendName(TpBackend backend) {
  switch (backend) {
    case TpBackend::kAuto:
      return "auto";
    case TpBackend::kMpi:
      return "mpi";
    case TpBackend::kNccl:
      return "nccl";
    case TpBackend::kHostStaged:
      return "host-staged";
  }
  return "unknown";
}

}  // namespace tessera
