// The router's request log: one line per finished request (a relay that
// ended: router/generate_relay.h), written when the relay is destroyed, so
// never on a request's per-message path.
//
//   text: 2025-01-02T03:04:05.678Z request id=router-1f-7 client_id=- model=stories
//         front_end=grpc worker=w0 attempts=1 continuations=0 status=OK finish=length
//         prompt_tokens=12 completion_tokens=16 cached_tokens=0 queue_ms=0.1 ttft_ms=12.3
//         total_ms=40.2 (one line; values with spaces or quotes are quoted; "-" for none)
//   json: {"ts":"…","request_id":"…","client_request_id":null,"model":"…",
//          "front_end":"grpc","worker":"w0","attempts":1,"continuations":0,
//          "status":"OK",
//          "finish_reason":"length","prompt_tokens":12,"completion_tokens":16,
//          "cached_tokens":0,"queue_ms":0.1,"ttft_ms":12.3,"total_ms":40.2}
//          (+ "error" when the status is not OK)
//
// Times are measured at the router, from the moment the request reached the
// relay: queue_ms waiting for an admission slot, ttft_ms until the first
// token was read from the worker (null/"-" when none came), total_ms until
// the request ended. Tokens are the worker's usage (summed over the n
// choices for completion tokens).
//
// Thread-safe: RequestLog::Write takes a lock around one fwrite.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace tessera::router {

// What the relay knows about a request when it ends.
struct RequestRecord {
  absl::Time end_time;
  std::string request_id;
  std::string client_request_id;  // the id the client sent; empty: none
  std::string model;
  std::string front_end;  // "grpc" or "http"
  std::string worker;     // the last worker tried; empty: never placed
  int attempts = 0;       // placements made
  int continuations = 0;  // of them, continuations of a stream that had reached the
                          // client (mid-stream failover: router/continuation.h)
  grpc::StatusCode status = grpc::StatusCode::OK;
  std::string error;          // the status message when not OK
  std::string finish_reason;  // "length", "stop", ...; empty: no final message
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  absl::Duration queue;                // admission wait
  std::optional<absl::Duration> ttft;  // to the first token, when one came
  absl::Duration total;                // to the end
  bool failed_over = false;            // ended OK after a retry on another worker
};

enum class RequestLogFormat { kText, kJson };

// "text" or "json"; INVALID_ARGUMENT naming the accepted values otherwise.
absl::StatusOr<RequestLogFormat> ParseRequestLogFormat(absl::string_view name);

// One line, without the newline.
std::string FormatRequestText(const RequestRecord& record);
std::string FormatRequestJson(const RequestRecord& record);

class RequestLog {
 public:
  // Lines go to `out` (not owned; stdout in tessera-router), flushed each.
  RequestLog(RequestLogFormat format, std::FILE* out) : format_(format), out_(out) {}
  void Write(const RequestRecord& record);

 private:
  const RequestLogFormat format_;
  absl::Mutex mu_;
  std::FILE* const out_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace tessera::router
