// The GPU's own limits, measured: device-to-device copy bandwidth and the
// bf16 GEMM rate through cuBLASLt (the roofs gpu_bench compares Tessera
// against). Needs a selected CUDA device; not thread-safe (it times the
// default stream).
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace tessera::gpu_bench {

// The median of `v` (0 when empty).
double Median(std::vector<double> v);

// Bytes/s of cudaMemcpy device-to-device (a 2 GiB buffer), counting bytes
// read plus written; the median of 6 timed copies after 2 warm-ups.
absl::StatusOr<double> CopyBandwidth();

// FLOP/s of a bf16 [n, n] x [n, n] GEMM through cuBLASLt (float32 compute);
// the median of 7 timed GEMMs after 3 warm-ups.
absl::StatusOr<double> GemmRate(int n);

}  // namespace tessera::gpu_bench
