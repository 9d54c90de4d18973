// Per-(device, stream) scratch buffers for CUDA ops that need temporary
// device memory between kernels (the split-K partials of decode attention).
// A buffer only grows: a larger request frees the old one (cudaFree waits
// for the device, so work still using it has finished) and allocates anew.
// A CUDA graph captured while a buffer sat at its old address would read
// freed memory: every move bumps its stream's ScratchGeneration(), which
// graph owners record at capture and compare before each replay; and a buffer never grows
// while its stream is capturing (the capture fails instead, with a message
// saying to warm up at that shape first).
// Thread-safety: thread-safe; a buffer belongs to its stream, so two threads
// must not enqueue ops on one stream at the same time (they never should).
// The decision (DecideScratch) is a pure function, testable without a GPU;
// the rest is compiled only with the CUDA path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"

namespace tessera::ops::cuda {

enum class ScratchKind { kAttentionDecode };

// What a request for `want` bytes does to a buffer of `have` bytes (0: none
// yet) on a stream that is (`capturing`) or is not capturing a CUDA graph.
enum class ScratchAction {
  kReuse,   // have >= want: the buffer as it is
  kGrow,    // free the old buffer (if any), allocate `bytes`
  kRefuse,  // it would have to grow during a capture: FAILED_PRECONDITION
};
struct ScratchDecision {
  ScratchAction action = ScratchAction::kReuse;
  size_t bytes = 0;  // kGrow: the new size, `want` rounded up to a MiB
};
inline ScratchDecision DecideScratch(size_t have, size_t want, bool capturing) {
  if (have >= want && have > 0) return {ScratchAction::kReuse, have};
  if (capturing) return {ScratchAction::kRefuse, 0};
  // 1 MiB steps, so slowly growing requests do not reallocate often.
  constexpr size_t kStep = size_t{1} << 20;
  const size_t rounded = ((want > 0 ? want : 1) + kStep - 1) / kStep * kStep;
  return {ScratchAction::kGrow, rounded};
}

// At least `bytes` of device memory for `kind` on the current device and the
// calling thread's current stream, valid until the next call for the same
// (kind, device, stream) with more bytes. FAILED_PRECONDITION (naming the
// kind and both sizes) when it would have to grow while the stream captures.
absl::StatusOr<void*> ScratchBuffer(ScratchKind kind, size_t bytes);

// The number of (re)allocations of the scratch buffers of the current device
// and the calling thread's current stream (-1 without a usable device). Work
// captured on that stream at an older value may point at freed memory.
int64_t ScratchGeneration();

}  // namespace tessera::ops::cuda
