// The argument checks and the device dispatch shared by the ops of
// kernels/ops.h (ops.cc, ops_attention.cc, ops_sampling.cc). Private to
// those files: not part of the ops API. Every op checks, before touching
// data: each tensor is defined, has the expected dtype, rank and dimensions,
// all tensors share one device, and outputs do not overlap inputs (except
// where ops.h allows it). Failures are INVALID_ARGUMENT messages of the form
// "Linear: w must be float32 [64, 32], got float32 [64, 30] on cpu".
// Thread-safe (pure functions of their arguments).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "kernels/tensor.h"

// TESSERA_CUDA_OP(Fn(args)): the CUDA branch of an op's dispatch, a lambda
// calling cuda::Fn(args), or reporting that the CUDA path is not built. The
// op's name must be in scope as kOp.
#if TESSERA_HAVE_CUDA
#define TESSERA_CUDA_OP(call) [&]() -> absl::Status { return cuda::call; }
#else
#define TESSERA_CUDA_OP(call) [&]() -> absl::Status { return CudaNotBuilt(kOp); }
#endif

namespace tessera::ops {

// What element type a tensor argument must have. kFloat is the activation /
// weight type of the tensor's device: float32 on the CPU; float32, float16 or
// bfloat16 on CUDA.
enum class Kind { kFloat, kInt32, kInt64 };

inline constexpr int64_t kAny = -1;  // any size in an expected shape

// "cpu" or "cuda".
absl::string_view DeviceName(Device device);

// "float32 [4, 64] on cpu", or "an undefined tensor".
std::string Describe(const Tensor& t);

// `name` must be a defined tensor of `kind` whose shape matches `shape`
// (kAny matches any size).
absl::Status Expect(absl::string_view op, absl::string_view name, const Tensor& t, Kind kind,
                    std::initializer_list<int64_t> shape);

// A named tensor argument, for the checks over several of them.
struct Arg {
  absl::string_view name;
  const Tensor* tensor;
};

// All `args` are on the device of the first.
absl::Status SameDevice(absl::string_view op, std::initializer_list<Arg> args);

// Floating tensors of one call share the dtype of the first.
absl::Status SameDType(absl::string_view op, std::initializer_list<Arg> args);

// `out`'s bytes do not overlap any of `inputs`'.
absl::Status NoOverlap(absl::string_view op, Arg out, std::initializer_list<Arg> inputs);

// FAILED_PRECONDITION: `op` has no CUDA path in this binary.
absl::Status CudaNotBuilt(absl::string_view op);

// Runs `cpu` for CPU tensors and `cuda` (see TESSERA_CUDA_OP) for CUDA ones.
template <typename Cpu, typename Cuda>
absl::Status Dispatch(absl::string_view op, Device device, Cpu&& cpu, Cuda&& cuda) {
  switch (device) {
    case Device::kCpu:
      return cpu();
    case Device::kCuda:
      return cuda();
  }
  return absl::InternalError(absl::StrCat(op, ": unknown device"));
}

}  // namespace tessera::ops
