// The relay's retry decisions as small pure functions (no gRPC calls, no
// clocks, no randomness of their own), so each can be tested alone:
//   ClassifyAttemptEnd  how one upstream attempt ended (success, the
//                       client's own error, a rejection, a worker failure,
//                       or a cancellation that says nothing about the worker)
//   BackoffPolicy       whether another attempt may start and after how long
// Stateless; thread-safe.
#pragma once

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace tessera::router {

// How one attempt on a worker ended, from the relay's point of view.
enum class AttemptEnd {
  kCompleted,    // the stream ended OK after its final message
  kClientError,  // the request's own fault (INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE,
                 // FAILED_PRECONDITION, ALREADY_EXISTS): passed through, never retried
  kCancelled,    // the client left or its deadline passed: no signal about the worker
  kRejected,     // the worker refused it for now (typed reason, common/api/rejection.h,
                 // or RESOURCE_EXHAUSTED): another worker may take it; not a failure
  kWorkerError,  // the worker failed: retry elsewhere, count against its breaker
};

// What the relay knew when the upstream call ended.
struct AttemptFacts {
  grpc::Status status;                  // the upstream call's
  bool saw_final = false;               // a message with a finish reason was relayed
  bool client_cancelled = false;        // the downstream call was cancelled / broke
  bool client_deadline_passed = false;  // now >= the client's deadline
};

AttemptEnd ClassifyAttemptEnd(const AttemptFacts& facts);

// True for the codes that are the request's own fault (see kClientError).
bool IsClientError(grpc::StatusCode code);

// Exponential backoff with a cap and jitter, over a bounded number of
// attempts. Value type.
struct BackoffPolicy {
  int max_attempts = 3;                          // placements per request, >= 1
  absl::Duration base = absl::Milliseconds(20);  // before the 2nd attempt
  absl::Duration max = absl::Seconds(2);         // cap before jitter

  // Whether an attempt may follow `attempts_made` (>= 1) failed ones.
  bool MayRetry(int attempts_made) const { return attempts_made < max_attempts; }
  // The wait before the next attempt after `attempts_made` (>= 1):
  // min(base * 2^(attempts_made - 1), max) * jitter, with `jitter` drawn by
  // the caller from [0.5, 1.5).
  absl::Duration Delay(int attempts_made, double jitter) const;
};

}  // namespace tessera::router
