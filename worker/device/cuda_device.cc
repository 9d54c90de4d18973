#include "worker/device/cuda_device.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

#if TESSERA_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#endif

namespace tessera {

int LocalRankFromEnv() {
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"}) {
    const char* value = std::getenv(name);
    int rank = 0;
    if (value != nullptr && absl::SimpleAtoi(value, &rank) && rank >= 0) return rank;
  }
  return 0;
}

int UsableCudaDevices() {
  absl::StatusOr<int> count = CudaDeviceCount();
  return count.ok() ? *count : 0;
}

std::string CudaUnavailableReason() {
  absl::StatusOr<int> count = CudaDeviceCount();
  if (!count.ok()) return std::string(count.status().message());
  if (*count == 0) return "no CUDA device is visible (cudaGetDeviceCount returned 0)";
  return "";
}

absl::StatusOr<int> DeviceForLocalRank(int local_rank) {
  if (local_rank < 0) {
    return absl::InvalidArgumentError(absl::StrCat("local rank ", local_rank, " is negative"));
  }
  const int count = UsableCudaDevices();
  if (count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA device for local rank ", local_rank, ": ", CudaUnavailableReason()));
  }
  return local_rank % count;
}

absl::Status ZeroAsync(Tensor& t) {
  if (t.nbytes() == 0) return absl::OkStatus();
  if (t.data() == nullptr) return absl::InvalidArgumentError("ZeroAsync: tensor is unallocated");
  switch (t.device()) {
    case Device::kCpu:
      std::memset(t.data(), 0, t.nbytes());
      return absl::OkStatus();
    case Device::kCuda:
#if TESSERA_HAVE_CUDA
      CUDA_RETURN_IF_ERROR(
          cudaMemsetAsync(t.data(), 0, t.nbytes(), static_cast<cudaStream_t>(CurrentCudaStream())));
      return absl::OkStatus();
#else
      return absl::FailedPreconditionError("ZeroAsync: a CUDA tensor without the CUDA path");
#endif
  }
  return absl::InvalidArgumentError("ZeroAsync: unknown device");
}

absl::Status CopyColumnsAsync(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                              int64_t cols) {
  if (src.ndim() != 2 || dst.ndim() != 2 || src.dim(0) != dst.dim(0) ||
      src.dtype() != dst.dtype() || src.device() != dst.device() || cols < 0 || src_col < 0 ||
      dst_col < 0 || src_col + cols > src.dim(1) || dst_col + cols > dst.dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CopyColumnsAsync: cannot copy ", cols, " columns from column ", src_col, " of ",
        DTypeName(src.dtype()), src.ShapeString(), " to column ", dst_col, " of ",
        DTypeName(dst.dtype()), dst.ShapeString(), " (2-D, same rows, dtype and device)"));
  }
  const size_t elem = DTypeSize(src.dtype());
  const int64_t rows = src.dim(0);
  if (rows == 0 || cols == 0) return absl::OkStatus();
  const char* s = static_cast<const char*>(src.data()) + src_col * elem;
  char* d = static_cast<char*>(dst.data()) + dst_col * elem;
  const size_t spitch = src.dim(1) * elem;
  const size_t dpitch = dst.dim(1) * elem;
  switch (src.device()) {
    case Device::kCpu:
      for (int64_t r = 0; r < rows; ++r) std::memcpy(d + r * dpitch, s + r * spitch, cols * elem);
      return absl::OkStatus();
    case Device::kCuda:
#if TESSERA_HAVE_CUDA
      CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(d, dpitch, s, spitch, cols * elem, rows,
                                             cudaMemcpyDeviceToDevice,
                                             static_cast<cudaStream_t>(CurrentCudaStream())));
      return absl::OkStatus();
#else
      return absl::FailedPreconditionError("CopyColumnsAsync: a CUDA tensor without the CUDA path");
#endif
  }
  return absl::InvalidArgumentError("CopyColumnsAsync: unknown device");
}

#if TESSERA_HAVE_CUDA

absl::Status SelectCudaDevice(int ordinal) {
  const int count = UsableCudaDevices();
  if (ordinal < 0 || ordinal >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", ordinal, " does not exist (visible devices: ", count, ")"));
  }
  CUDA_RETURN_IF_ERROR(cudaSetDevice(ordinal));
  // Creates the primary context now rather than at the first allocation.
  CUDA_RETURN_IF_ERROR(cudaFree(nullptr));
  return absl::OkStatus();
}

absl::StatusOr<int> CurrentCudaDevice() {
  int ordinal = -1;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&ordinal));
  return ordinal;
}

absl::StatusOr<CudaDeviceInfo> GetCudaDeviceInfo(int ordinal) {
  cudaDeviceProp prop{};
  CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, ordinal));
  CudaDeviceInfo info;
  info.ordinal = ordinal;
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = static_cast<int64_t>(prop.totalGlobalMem);
  char bus[32] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), ordinal) == cudaSuccess) {
    info.pci_bus_id = bus;
  } else {
    cudaGetLastError();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    const auto b = static_cast<unsigned char>(prop.uuid.bytes[i]);
    info.uuid.push_back(kHex[b >> 4]);
    info.uuid.push_back(kHex[b & 15]);
  }
  // CUDA 13 dropped memoryClockRate from cudaDeviceProp: ask the attribute.
  int clock_khz = 0;
  int bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, ordinal) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal) == cudaSuccess) {
    // Double data rate: two transfers per clock.
    info.peak_memory_bandwidth = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0);
  } else {
    cudaGetLastError();
  }
  return info;
}

absl::StatusOr<DeviceMemoryInfo> CudaMemoryInfo() {
  size_t free = 0;
  size_t total = 0;
  CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free, &total));
  return DeviceMemoryInfo{static_cast<int64_t>(free), static_cast<int64_t>(total)};
}

absl::Status CudaDeviceSynchronize() {
  CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return absl::OkStatus();
}

absl::StatusOr<CudaStream> CudaStream::Create() {
  cudaStream_t stream = nullptr;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CudaStream s;
  s.stream_ = stream;
  return s;
}

CudaStream::~CudaStream() {
  if (stream_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
    stream_ = other.stream_;
    other.stream_ = nullptr;
  }
  return *this;
}

absl::StatusOr<CudaEvent> CudaEvent::Create() {
  cudaEvent_t event = nullptr;
  CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CudaEvent e;
  e.event_ = event;
  return e;
}

CudaEvent::~CudaEvent() {
  if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

CudaEvent& CudaEvent::operator=(CudaEvent&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    event_ = other.event_;
    other.event_ = nullptr;
  }
  return *this;
}

absl::Status CudaEvent::Record() {
  CUDA_RETURN_IF_ERROR(cudaEventRecord(static_cast<cudaEvent_t>(event_),
                                       static_cast<cudaStream_t>(CurrentCudaStream())));
  return absl::OkStatus();
}

absl::Status CudaEvent::Synchronize() {
  CUDA_RETURN_IF_ERROR(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
  return absl::OkStatus();
}

CudaDeviceGuard::CudaDeviceGuard(int ordinal) {
  if (cudaGetDevice(&previous_) != cudaSuccess) {
    cudaGetLastError();
    previous_ = -1;
  }
  if (absl::Status s = cuda::CudaStatus(cudaSetDevice(ordinal), "cudaSetDevice"); !s.ok()) {
    spdlog::error("CudaDeviceGuard: {}", s.message());
  }
}

CudaDeviceGuard::~CudaDeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

#else  // !TESSERA_HAVE_CUDA

namespace {

absl::Status NotBuilt() {
  return absl::FailedPreconditionError(
      "this binary was built without the CUDA path (no nvcc at configure time); "
      "rebuild with -DTESSERA_CUDA=ON on a machine with the CUDA toolkit");
}

}  // namespace

absl::Status SelectCudaDevice(int /*ordinal*/) { return NotBuilt(); }
absl::StatusOr<int> CurrentCudaDevice() { return NotBuilt(); }
absl::StatusOr<CudaDeviceInfo> GetCudaDeviceInfo(int /*ordinal*/) { return NotBuilt(); }
absl::StatusOr<DeviceMemoryInfo> CudaMemoryInfo() { return NotBuilt(); }
absl::Status CudaDeviceSynchronize() { return NotBuilt(); }
CudaDeviceGuard::CudaDeviceGuard(int /*ordinal*/) {}
CudaDeviceGuard::~CudaDeviceGuard() = default;
absl::StatusOr<CudaStream> CudaStream::Create() { return NotBuilt(); }
CudaStream::~CudaStream() = default;
CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  std::swap(stream_, other.stream_);
  return *this;
}
absl::StatusOr<CudaEvent> CudaEvent::Create() { return NotBuilt(); }
CudaEvent::~CudaEvent() = default;
CudaEvent& CudaEvent::operator=(CudaEvent&& other) noexcept {
  std::swap(event_, other.event_);
  return *this;
}
absl::Status CudaEvent::Record() { return NotBuilt(); }
absl::Status CudaEvent::Synchronize() { return NotBuilt(); }

#endif  // TESSERA_HAVE_CUDA

}  // namespace tessera
