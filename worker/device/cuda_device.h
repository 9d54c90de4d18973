// The CUDA device of one worker rank: which GPU a rank drives (by its rank
// among the processes on its node), what that GPU is and how much memory it
// has free. This header does not need the CUDA toolkit: in a build without the
// CUDA path every query reports that no device exists (UsableCudaDevices() ==
// 0, FAILED_PRECONDITION from the rest), so callers need no #if. Errors name
// the CUDA call and its code (kernels/cuda/cuda_check.h; NCCL's in
// worker/nccl_check.h).
//
// Thread-safety: the functions are thread-safe, but the CUDA "current device"
// is per host thread: SelectCudaDevice must be called on each thread that
// launches work (the engine thread), or use CudaDeviceGuard.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/tensor.h"

namespace tessera {

// CudaBuilt() and CudaDeviceCount() live in kernels/tensor.h.

// Visible CUDA devices, 0 when CudaDeviceCount() fails (no CUDA path, no
// driver, no device). Never fails.
int UsableCudaDevices();

// Why UsableCudaDevices() is 0, for skip messages and logs (e.g. "CUDA path
// not built", "cudaGetDeviceCount failed: cudaErrorNoDevice (100): no
// CUDA-capable device is detected"); empty when a device exists.
std::string CudaUnavailableReason();

struct CudaDeviceInfo {
  int ordinal = -1;  // among the visible devices
  std::string name;  // e.g. "NVIDIA H100 80GB HBM3"
  int cc_major = 0;  // compute capability
  int cc_minor = 0;
  int multiprocessors = 0;
  int64_t total_memory = 0;  // bytes
  std::string pci_bus_id;    // e.g. "0000:1b:00.0"
  std::string uuid;          // 32 hex digits; identifies the GPU across processes
  // Peak HBM bandwidth from the memory clock and bus width (bytes/s), for
  // reports; 0 when the driver does not say.
  double peak_memory_bandwidth = 0;
};

// The device a rank with `local_rank` among `local_size` ranks of its node
// drives: local_rank % UsableCudaDevices(). Several ranks get the same device
// when local_size > the device count (the host-staged communicator then does
// tensor parallelism; see worker/comm/cuda_communicators.h).
// FAILED_PRECONDITION when no device exists; INVALID_ARGUMENT for a negative
// rank.
absl::StatusOr<int> DeviceForLocalRank(int local_rank);

// Makes `ordinal` the calling thread's current device and creates its
// primary context (so later memory figures include it). Errors name the CUDA
// call and code.
absl::Status SelectCudaDevice(int ordinal);
// The calling thread's current device.
absl::StatusOr<int> CurrentCudaDevice();

absl::StatusOr<CudaDeviceInfo> GetCudaDeviceInfo(int ordinal);

struct DeviceMemoryInfo {
  int64_t free = 0;   // bytes free on the device (all processes counted)
  int64_t total = 0;  // bytes
};
// cudaMemGetInfo of the current device.
absl::StatusOr<DeviceMemoryInfo> CudaMemoryInfo();

// Waits for all work on the current device (cudaDeviceSynchronize).
absl::Status CudaDeviceSynchronize();

// Zeroes `t` in place: memset on the CPU; on CUDA a cudaMemsetAsync enqueued
// on the current stream (capturable in a CUDA graph).
absl::Status ZeroAsync(Tensor& t);

// dst[:, dst_col : dst_col + cols] = src[:, src_col : src_col + cols] for 2-D
// tensors of one dtype with the same number of rows, on the same device (one
// cudaMemcpy2DAsync on the current stream for CUDA, capturable; row memcpys
// on the CPU). INVALID_ARGUMENT when the shapes, dtypes or devices disagree or
// a column range is outside its tensor.
absl::Status CopyColumnsAsync(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                              int64_t cols);

// An owned, non-blocking CUDA stream on the device current at Create (a
// non-default stream, so it can be captured into CUDA graphs). Movable.
class CudaStream {
 public:
  CudaStream() = default;
  static absl::StatusOr<CudaStream> Create();
  ~CudaStream();
  CudaStream(CudaStream&& other) noexcept : stream_(other.stream_) { other.stream_ = nullptr; }
  CudaStream& operator=(CudaStream&& other) noexcept;
  void* get() const { return stream_; }  // cudaStream_t

 private:
  void* stream_ = nullptr;
};

// An owned CUDA event (timing disabled) for "has the stream got past this
// point" checks. Movable.
class CudaEvent {
 public:
  CudaEvent() = default;
  static absl::StatusOr<CudaEvent> Create();
  ~CudaEvent();
  CudaEvent(CudaEvent&& other) noexcept : event_(other.event_) { other.event_ = nullptr; }
  CudaEvent& operator=(CudaEvent&& other) noexcept;
  // Records the event on the current stream.
  absl::Status Record();
  // Waits on the host until the work recorded before it has finished (at once
  // when it was never recorded).
  absl::Status Synchronize();

 private:
  void* event_ = nullptr;
};

// This process's rank among the processes on its node as the launcher tells
// it, without MPI: OMPI_COMM_WORLD_LOCAL_RANK (Open MPI), MPI_LOCALRANKID
// (MPICH/Hydra), SLURM_LOCALID, LOCAL_RANK (torchrun and Kubernetes
// launchers), in that order; 0 when none is set or parsable. MpiSession's
// MPI_COMM_TYPE_SHARED split is the authority when MPI is up.
int LocalRankFromEnv();

// Sets the thread's current device for its lifetime and restores the previous
// one on destruction. For helper threads (e.g. a gRPC-side thread that copies
// to the device). Errors are logged, not thrown.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int ordinal);
  ~CudaDeviceGuard();
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace tessera
