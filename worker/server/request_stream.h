// One streaming Generate call: the gRPC write reactor and the request's
// timings. It writes what the engine's output path gives it (tokens, text,
// logprobs, finish reason: worker/engine/output_processor.h) and decides
// nothing about the request's end itself.
//
// Threads and lifetime. The engine thread calls the RequestSink methods; gRPC
// calls the reactions (OnWriteDone, OnCancel, OnDone). Outputs are turned into
// a message on the engine thread and merged into `pending_`; at most one write
// is in flight, and whatever arrives meanwhile is coalesced into the next
// messages (at most kMaxTokensPerMessage tokens each; only parts of one choice
// (GenerateResponse.index) merge, and nothing merges into a choice's final
// message). Reactions never block and never touch engine
// state: a cancel only queues an abort on the EngineLoop. The reactor object is owned by gRPC and
// deleted in OnDone; the GenerateStream state is shared (shared_ptr) by the
// reactor and the engine loop, and it only calls into the reactor while it
// holds the right to (a write it started, or the Finish it decided), which
// keeps the reactor alive until then. After Finish nothing is written.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/llm.pb.h"
#include "worker/server/engine_loop.h"

namespace tessera {

class GenerateStream : public RequestSink, public std::enable_shared_from_this<GenerateStream> {
 public:
  struct Options {
    std::string request_id;
    std::string worker_id;
    // Sent in the first message (return_prompt_token_ids); empty = none.
    std::vector<int32_t> prompt_token_ids;
    // The request's choices (EngineRequest::choices(): SamplingParams::n, or
    // a continuation's unfinished choices): the stream ends after each has
    // sent its final message.
    int n = 1;
  };

  // A stream for a request about to be submitted with `loop.Submit` (pass it
  // as the sink); hand reactor() to gRPC. If Submit fails, call OnError.
  static std::shared_ptr<GenerateStream> Create(Options options, EngineLoop* loop);
  // The reactor for gRPC (owned by gRPC; deleted in its OnDone).
  grpc::ServerWriteReactor<v1::GenerateResponse>* reactor();

  // RequestSink (engine thread / any thread for OnError).
  void OnScheduled() override;
  bool OnOutput(RequestOutput output) override;
  void OnError(absl::Status status) override;

  class Reactor;

 private:
  GenerateStream(Options options, EngineLoop* loop);
  // Merges `part` into pending_ and starts a write when none is in flight.
  void Enqueue(v1::GenerateResponse part, bool last);
  // With mu_ held: what to do next (a write to start, or the Finish); done
  // by the caller after unlocking.
  struct Action {
    bool write = false;
    std::optional<grpc::Status> finish;
    Reactor* reactor = nullptr;
  };
  Action NextAction() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const Action& action);
  // Reactions.
  void WriteDone(bool ok);
  void Cancelled();
  void Done();

  const Options options_;
  EngineLoop* const loop_;
  const std::chrono::steady_clock::time_point arrival_;

  // Engine thread only.
  bool prompt_ids_sent_ = false;
  int finished_choices_ = 0;
  std::optional<std::chrono::steady_clock::time_point> scheduled_;
  std::optional<std::chrono::steady_clock::time_point> first_token_;

  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null after OnDone
  // Messages waiting for the write in flight; outputs coalesce into the last
  // one up to kMaxTokensPerMessage tokens, so no message outgrows a client's
  // receive limit however far behind the client reads.
  std::deque<v1::GenerateResponse> pending_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse writing_;  // owned by the write in flight
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);  // Finish once writes drain
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // final message queued or error: no more input
};

}  // namespace tessera
