#include "worker/comm/cuda_communicators.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "worker/comm/gpu_peers.h"
#include "worker/device/cuda_device.h"

#if TESSERA_HAVE_NCCL
#include <nccl.h>

#include "worker/comm/nccl_check.h"
#endif

namespace tessera {
namespace {

absl::Status CheckDeviceFloat(absl::string_view op, const Tensor& t) {
  if (t.dtype() != DType::kFloat32 && t.dtype() != DType::kFloat16 &&
      t.dtype() != DType::kBFloat16) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": a CUDA tensor must be float32, float16 or bfloat16, got ", DTypeName(t.dtype())));
  }
  if (t.data() == nullptr && t.numel() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": tensor is unallocated"));
  }
  return absl::OkStatus();
}

// `out` must be a preallocated [size, ...in.shape] CUDA tensor of in's dtype.
absl::Status CheckDeviceGather(const Tensor& in, int size, const Tensor& out) {
  std::vector<int64_t> shape = {size};
  shape.insert(shape.end(), in.shape().begin(), in.shape().end());
  if (in.data() == nullptr && in.numel() > 0) {
    return absl::InvalidArgumentError("AllGather: input is unallocated");
  }
  if (out.data() == nullptr || out.device() != Device::kCuda || out.dtype() != in.dtype() ||
      out.shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AllGather: a CUDA input needs a preallocated CUDA output ", DTypeName(in.dtype()), " [",
        absl::StrJoin(shape, ", "), "], got ", DTypeName(out.dtype()), out.ShapeString(),
        out.device() == Device::kCuda ? " on cuda" : " on cpu"));
  }
  return absl::OkStatus();
}

// ---- host-staged ------------------------------------------------------------

class HostStagedCommunicator final : public Communicator {
 public:
  explicit HostStagedCommunicator(std::unique_ptr<Communicator> mpi) : mpi_(std::move(mpi)) {}

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  std::string name() const override { return "host-staged"; }

  absl::Status AllReduceSum(Tensor& t) override {
    if (t.device() == Device::kCpu) return mpi_->AllReduceSum(t);
    RETURN_IF_ERROR(CheckDeviceFloat("AllReduceSum", t));
    if (t.numel() == 0) return absl::OkStatus();
    RETURN_IF_ERROR(ReserveStaging(t.nbytes()));
    Tensor host = Staging(0, t.dtype(), t.shape());
    RETURN_IF_ERROR(host.CopyFrom(t));  // waits for the stream: t's producers are done
    if (t.dtype() == DType::kFloat32) {
      RETURN_IF_ERROR(mpi_->AllReduceSum(host));
    } else {
      // Sum in float32 and round once, rather than rounding at every hop.
      if (sum_.numel() < t.numel()) sum_ = Tensor::Empty(DType::kFloat32, {t.numel()});
      Tensor sum = sum_.Slice(0, t.numel());
      ConvertToFloat32(host.data(), t.dtype(), t.numel(), sum.data_as<float>());
      RETURN_IF_ERROR(mpi_->AllReduceSum(sum));
      const float* s = sum.data_as<float>();
      auto* h = host.data_as<uint16_t>();
      const bool bf16 = t.dtype() == DType::kBFloat16;
      for (int64_t i = 0; i < t.numel(); ++i) {
        h[i] = bf16 ? FloatToBFloat16(s[i]) : FloatToHalf(s[i]);
      }
    }
    // Enqueued only: the staging buffer is not touched again before the
    // stream has read it (the next collective starts by waiting for it).
    return t.CopyFromAsync(host);
  }

  absl::Status AllGather(const Tensor& in, Tensor& out) override {
    if (in.device() == Device::kCpu) return mpi_->AllGather(in, out);
    RETURN_IF_ERROR(CheckDeviceGather(in, size(), out));
    if (in.numel() == 0) return absl::OkStatus();
    const size_t out_offset = Aligned(in.nbytes());
    RETURN_IF_ERROR(ReserveStaging(out_offset + out.nbytes()));
    Tensor host_in = Staging(0, in.dtype(), in.shape());
    Tensor host_out = Staging(out_offset, out.dtype(), out.shape());
    RETURN_IF_ERROR(host_in.CopyFrom(in));
    RETURN_IF_ERROR(mpi_->AllGather(host_in, host_out));
    return out.CopyFromAsync(host_out);
  }

  absl::Status Broadcast(std::string& bytes, int root) override {
    return mpi_->Broadcast(bytes, root);
  }
  absl::Status Barrier() override { return mpi_->Barrier(); }

 private:
  static size_t Aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

  // Makes the pinned staging buffer at least `bytes` long. Growing waits for
  // the stream first: an enqueued copy may still read the old buffer.
  absl::Status ReserveStaging(size_t bytes) {
    if (pinned_.nbytes() >= bytes) return absl::OkStatus();
    RETURN_IF_ERROR(SynchronizeCurrentStream());
    const size_t grow = std::max(bytes, pinned_.nbytes() * 2);
    pinned_ = Tensor::EmptyPinned(DType::kInt32, {static_cast<int64_t>((grow + 3) / 4)});
    return absl::OkStatus();
  }

  // A view of the staging buffer from byte `offset` (reserved beforehand).
  Tensor Staging(size_t offset, DType dtype, std::vector<int64_t> shape) {
    return Tensor::View(static_cast<char*>(pinned_.data()) + offset, dtype, std::move(shape));
  }

  std::unique_ptr<Communicator> mpi_;
  Tensor pinned_;  // page-locked staging, grown on demand
  Tensor sum_;     // float32 sums of half-precision tensors
};

// ---- NCCL -------------------------------------------------------------------

#if TESSERA_HAVE_NCCL

absl::StatusOr<ncclDataType_t> NcclType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kFloat16:
      return ncclFloat16;
    case DType::kBFloat16:
      return ncclBfloat16;
    case DType::kInt32:
      return ncclInt32;
    case DType::kInt64:
      return ncclInt64;
  }
  return absl::InvalidArgumentError("unknown dtype");
}

cudaStream_t CurrentStream() { return static_cast<cudaStream_t>(CurrentCudaStream()); }

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::unique_ptr<Communicator> mpi, ncclComm_t comm)
      : mpi_(std::move(mpi)), comm_(comm) {}

  ~NcclCommunicator() override {
    // After an error a collective may be stuck in flight: abort rather than
    // wait for it.
    if (broken_) {
      ncclCommAbort(comm_);
    } else {
      ncclCommDestroy(comm_);
    }
  }

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  std::string name() const override { return "nccl"; }
  bool SupportsGraphCapture() const override { return true; }

  absl::Status AllReduceSum(Tensor& t) override {
    if (t.device() == Device::kCpu) return mpi_->AllReduceSum(t);
    RETURN_IF_ERROR(CheckUsable("AllReduceSum"));
    RETURN_IF_ERROR(CheckDeviceFloat("AllReduceSum", t));
    if (t.numel() == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(const ncclDataType_t type, NcclType(t.dtype()));
    return Track(cuda::NcclStatus(ncclAllReduce(t.data(), t.data(), static_cast<size_t>(t.numel()),
                                                type, ncclSum, comm_, CurrentStream()),
                                  "ncclAllReduce"));
  }

  absl::Status AllGather(const Tensor& in, Tensor& out) override {
    if (in.device() == Device::kCpu) return mpi_->AllGather(in, out);
    RETURN_IF_ERROR(CheckUsable("AllGather"));
    RETURN_IF_ERROR(CheckDeviceGather(in, size(), out));
    if (in.numel() == 0) return absl::OkStatus();
    // Bytes: any dtype gathers the same way.
    return Track(cuda::NcclStatus(
        ncclAllGather(in.data(), out.data(), in.nbytes(), ncclInt8, comm_, CurrentStream()),
        "ncclAllGather"));
  }

  absl::Status Broadcast(std::string& bytes, int root) override {
    return mpi_->Broadcast(bytes, root);
  }
  absl::Status Barrier() override { return mpi_->Barrier(); }

 private:
  absl::Status CheckUsable(absl::string_view op) const {
    if (!broken_) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(op, ": the NCCL communicator is broken by an earlier error (rank ", rank(),
                     "); the ranks are out of step"));
  }
  absl::Status Track(absl::Status s) {
    if (!s.ok()) broken_ = true;
    return s;
  }

  std::unique_ptr<Communicator> mpi_;
  ncclComm_t comm_;
  bool broken_ = false;
};

#endif  // TESSERA_HAVE_NCCL

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> MakeHostStagedCommunicator(
    const MpiCommunicatorOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> mpi, MakeMpiCommunicator(options));
  return std::make_unique<HostStagedCommunicator>(std::move(mpi));
}

absl::StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(
    const MpiCommunicatorOptions& options) {
#if TESSERA_HAVE_NCCL
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> mpi, MakeMpiCommunicator(options));
  ncclUniqueId id{};
  std::string bytes;
  if (mpi->rank() == 0) {
    NCCL_RETURN_IF_ERROR(ncclGetUniqueId(&id));
    bytes.assign(id.internal, sizeof(id.internal));
  }
  RETURN_IF_ERROR(mpi->Broadcast(bytes, /*root=*/0));
  if (bytes.size() != sizeof(id.internal)) {
    return absl::DataLossError(absl::StrCat("ncclUniqueId from rank 0 has ", bytes.size(),
                                            " bytes, expected ", sizeof(id.internal)));
  }
  std::memcpy(id.internal, bytes.data(), bytes.size());
  ncclComm_t comm = nullptr;
  NCCL_RETURN_IF_ERROR(ncclCommInitRank(&comm, mpi->size(), id, mpi->rank()));
  return std::make_unique<NcclCommunicator>(std::move(mpi), comm);
#else
  (void)options;
  return absl::FailedPreconditionError(
      "the nccl tensor-parallel backend needs NCCL, which this binary was built without "
      "(set NCCL_HOME at configure time); use host-staged");
#endif
}

absl::StatusOr<std::unique_ptr<Communicator>> MakeCudaCommunicator(
    TpBackend backend, const MpiCommunicatorOptions& options) {
  if (backend == TpBackend::kMpi) {
    return absl::InvalidArgumentError(
        "tensor-parallel backend mpi moves CPU tensors only; a CUDA replica uses nccl or "
        "host-staged (or auto)");
  }
  if (backend == TpBackend::kHostStaged) return MakeHostStagedCommunicator(options);
  // Which ranks share a GPU decides between NCCL and host staging; every rank
  // sees the same list, so all choose alike.
  std::vector<std::string> uuids;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Communicator> probe, MakeMpiCommunicator(options));
    ASSIGN_OR_RETURN(uuids, GpuUuidsOfRanks(*probe));
  }
  std::string shared;
  for (size_t a = 0; a < uuids.size() && shared.empty(); ++a) {
    for (size_t b = a + 1; b < uuids.size(); ++b) {
      if (uuids[a] == uuids[b]) {
        shared = absl::StrCat("ranks ", a, " and ", b, " share GPU ", uuids[a]);
        break;
      }
    }
  }
  const bool have_nccl = TESSERA_HAVE_NCCL != 0;
  if (backend == TpBackend::kNccl) {
    if (!shared.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the nccl backend needs one GPU per rank, but ", shared,
                       " (NCCL refuses that); use the host-staged backend or one rank per GPU"));
    }
    return MakeNcclCommunicator(options);
  }
  if (!shared.empty() || !have_nccl) {
    const std::string why = !shared.empty() ? shared : std::string("NCCL is not built");
    spdlog::info("tensor parallelism over host-staged MPI copies: {}", why);
    return MakeHostStagedCommunicator(options);
  }
  return MakeNcclCommunicator(options);
}

}  // namespace tessera
