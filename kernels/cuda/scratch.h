// Per-(device, stream) scratch buffers for CUDA ops that need temporary
// device memory between kernels (the split-K partials of decode attention).
// A buffer only grows: a larger request frees the old one (cudaFree waits
// for the device, so work still using it has finished) and allocates anew,
// which cannot happen inside CUDA graph capture — warm up first.
// Thread-safety: thread-safe; a buffer belongs to its stream, so two threads
// must not enqueue ops on one stream at the same time (they never should).
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"

namespace tessera::ops::cuda {

enum class ScratchKind { kAttentionDecode };

// At least `bytes` of device memory for `kind` on the current device and the
// calling thread's current stream, valid until the next call for the same
// (kind, device, stream) with more bytes.
absl::StatusOr<void*> ScratchBuffer(ScratchKind kind, size_t bytes);

}  // namespace tessera::ops::cuda
