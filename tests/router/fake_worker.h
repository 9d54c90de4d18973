// An in-process fake replica leader for router tests: a gRPC server on
// 127.0.0.1 (a free port chosen at construction) serving tessera.v1.Worker
// (Generate, GetLoad, WatchKvEvents, Drain), tessera.v1.Llm (ListModels; the
// other Llm methods answer UNIMPLEMENTED) and grpc.health.v1. The test
// drives it: the load it reports, whether GetLoad fails or hangs, the KV
// events its watchers see, and a script for Generate. Stop() ends it as if
// the process died; Restart() serves again on the same port.
//
// Every server-side handler uses the callback API and never blocks.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/llm.pb.h"
#include "tessera/v1/worker.pb.h"

namespace tessera::router::testing {

struct FakeWorkerOptions {
  std::string worker_id;  // reported by GetLoad (may be empty) and set on Generate responses
  int block_size = 16;
  std::string model = "fake";
  int vocab_size = 512;
  int max_model_len = 2048;
  int max_n = 1;  // ModelInfo.max_n: the largest SamplingParams.n accepted
};

// What Worker.Generate does (taken when a call starts).
struct GenerateScript {
  // Token messages to send (token_ids {first_token_id + i}, worker_id and
  // request_id set), then a final message: finish_reason LENGTH, usage
  // {prompt_tokens: the prompt's token ids (or text bytes), completion_tokens}.
  // A continuation (GenerateRequest.continuation with k tokens) sends token
  // messages k .. tokens-1 only; completion_tokens still counts all.
  // With sampling.n > 1 choice c (index c) sends max(1, tokens - c) tokens
  // {first_token_id + 100 c + i} and its final message right after its last
  // token, the choices interleaved token by token; a continuation with
  // choices runs only those, each after the tokens it gives.
  int tokens = 4;
  // Fail after sending this many messages (the final one counts; -1 never;
  // 0 = fail before any message): the stream ends with `fail_status`.
  int fail_after_messages = -1;
  grpc::Status fail_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "scripted failure");
  // Send the token messages (up to a scripted failure), then hold the stream
  // open, without the final message, until the client cancels (CANCELLED) or
  // Stop() (UNAVAILABLE).
  bool hang = false;
  int first_token_id = 100;
};

class FakeWorker {
 public:
  // Starts serving. Aborts (TESSERA_CHECK) when no loopback port can be bound.
  explicit FakeWorker(FakeWorkerOptions options = {});
  ~FakeWorker();  // Stop()
  FakeWorker(const FakeWorker&) = delete;
  FakeWorker& operator=(const FakeWorker&) = delete;

  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  int port() const { return port_; }
  const FakeWorkerOptions& options() const { return options_; }

  // The LoadReport GetLoad returns. Empty worker_id / model and a zero
  // block_size are filled from the options.
  void SetLoad(v1::LoadReport report);
  // A non-OK status makes GetLoad fail with it; OK restores answering.
  void SetGetLoadStatus(grpc::Status status);
  // While true, GetLoad calls never answer (until their deadline or
  // cancellation, or Stop()).
  void SetGetLoadHang(bool hang);
  // Sent, as the next batch, to every current watcher and folded into the
  // snapshot a new watcher gets. `snapshot` and `sequence_number` are set by
  // the fake (per watcher: the snapshot is 0, then 1, 2, ...).
  void PushKvEvents(v1::KvEventBatch batch);
  // Current watchers skip `n` sequence numbers on their next batch (to
  // provoke a gap on the client side).
  void SkipKvSequenceNumbers(uint64_t n);
  void SetGenerateScript(GenerateScript script);

  int64_t generate_calls() const;
  int64_t get_load_calls() const;
  int64_t watch_calls() const;  // WatchKvEvents calls so far (reconnects included)
  int64_t drain_calls() const;
  int kv_watchers() const;                                     // WatchKvEvents streams open now
  int active_generates() const;                                // Generate streams open now
  std::vector<v1::GenerateRequest> generate_requests() const;  // every request seen, in order
  std::optional<v1::GenerateRequest> last_request() const;

  // Shuts the server down as if the process died: open streams end with
  // UNAVAILABLE, new connections are refused. Idempotent.
  void Stop();
  // Serves again on the same port (state such as the KV snapshot, load and
  // scripts is kept). An error when the port cannot be bound again.
  absl::Status Restart();
  bool running() const;

  struct State;  // shared with the server-side handlers (fake_worker.cc)

 private:
  absl::Status Serve(const std::string& listen);

  const FakeWorkerOptions options_;
  std::string address_;
  int port_ = 0;
  std::shared_ptr<State> state_;
};

}  // namespace tessera::router::testing
