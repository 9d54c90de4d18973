// The argument checks of kernels/op_checks.h.
#include "kernels/op_checks.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::ops {
namespace {

bool KindAccepts(Kind kind, const Tensor& t) {
  switch (kind) {
    case Kind::kInt32:
      return t.dtype() == DType::kInt32;
    case Kind::kInt64:
      return t.dtype() == DType::kInt64;
    case Kind::kFloat:
      switch (t.device()) {
        case Device::kCpu:
          return t.dtype() == DType::kFloat32;
        case Device::kCuda:
          return t.dtype() == DType::kFloat32 || t.dtype() == DType::kFloat16 ||
                 t.dtype() == DType::kBFloat16;
      }
  }
  return false;
}

absl::string_view KindName(Kind kind, Device device) {
  switch (kind) {
    case Kind::kInt32:
      return "int32";
    case Kind::kInt64:
      return "int64";
    case Kind::kFloat:
      switch (device) {
        case Device::kCpu:
          return "float32";
        case Device::kCuda:
          return "float32/float16/bfloat16";
      }
  }
  return "?";
}

bool Overlap(const Tensor& a, const Tensor& b) {
  if (a.nbytes() == 0 || b.nbytes() == 0) return false;
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

}  // namespace

absl::string_view DeviceName(Device device) {
  switch (device) {
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
  }
  return "unknown";
}

std::string Describe(const Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrCat(DTypeName(t.dtype()), " ", t.ShapeString(), " on ", DeviceName(t.device()));
}

absl::Status Expect(absl::string_view op, absl::string_view name, const Tensor& t, Kind kind,
                    std::initializer_list<int64_t> shape) {
  bool ok = t.defined() && KindAccepts(kind, t) && t.ndim() == static_cast<int>(shape.size());
  int i = 0;
  for (int64_t want : shape) {
    if (!ok) break;
    ok = want == kAny || t.dim(i) == want;
    ++i;
  }
  if (ok) return absl::OkStatus();
  std::vector<std::string> dims;
  for (int64_t want : shape) dims.push_back(want == kAny ? "*" : absl::StrCat(want));
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", name, " must be ", KindName(kind, t.device()), " [",
                   absl::StrJoin(dims, ", "), "], got ", Describe(t)));
}

absl::Status SameDevice(absl::string_view op, std::initializer_list<Arg> args) {
  const Arg& first = *args.begin();
  for (const Arg& a : args) {
    if (a.tensor->device() != first.tensor->device()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": all tensors must be on one device, but ", a.name, " is on ",
                       DeviceName(a.tensor->device()), " and ", first.name, " on ",
                       DeviceName(first.tensor->device())));
    }
  }
  return absl::OkStatus();
}

absl::Status SameDType(absl::string_view op, std::initializer_list<Arg> args) {
  const Arg& first = *args.begin();
  for (const Arg& a : args) {
    if (a.tensor->dtype() != first.tensor->dtype()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", a.name, " is ", DTypeName(a.tensor->dtype()), " but ", first.name,
                       " is ", DTypeName(first.tensor->dtype()), "; they must match"));
    }
  }
  return absl::OkStatus();
}

absl::Status NoOverlap(absl::string_view op, Arg out, std::initializer_list<Arg> inputs) {
  for (const Arg& in : inputs) {
    if (Overlap(*out.tensor, *in.tensor)) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", out.name, " must not overlap ", in.name, " in memory"));
    }
  }
  return absl::OkStatus();
}

absl::Status CudaNotBuilt(absl::string_view op) {
  return absl::FailedPreconditionError(
      absl::StrCat(op, ": CUDA path not built (this binary has only the CPU kernels)"));
}

}  // namespace tessera::ops
