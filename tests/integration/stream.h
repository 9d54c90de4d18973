// Client side of Worker.Generate for integration tests: run one streaming
// call to its end and collect what came back (tokens, the final message,
// the status), optionally cancelling it after some tokens; plus builders for
// common requests.
//
// Thread-safe: RunGenerate may be called from many threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "tessera/v1/worker.grpc.pb.h"

namespace tessera::testing {

struct StreamOptions {
  // Client deadline of the call (a safety net: a hung server fails the test
  // with DEADLINE_EXCEEDED instead of hanging it).
  std::chrono::milliseconds deadline{60000};
  // TryCancel() once this many tokens have arrived; 0 = right after the call
  // starts; -1 = never.
  int cancel_after_tokens = -1;
  // Called (on the calling thread) once the call started, with its context:
  // another thread may TryCancel() it until RunGenerate returns.
  std::function<void(grpc::ClientContext*)> on_start;
  // Called (on the calling thread) after the call ended, just before its
  // context is destroyed (pair with on_start to stop cancelling it).
  std::function<void(grpc::ClientContext*)> on_end;
  // Called (on the calling thread) after each message is read.
  std::function<void(const tessera::v1::GenerateResponse&)> on_message;
};

// Default options with the given deadline.
inline StreamOptions WithDeadline(std::chrono::milliseconds deadline) {
  StreamOptions o;
  o.deadline = deadline;
  return o;
}

struct StreamResult {
  grpc::Status status;
  std::vector<int32_t> tokens;                       // all token_ids, in order
  int messages = 0;                                  // messages read
  bool finished = false;                             // some message had a finish_reason
  int messages_after_finish = 0;                     // messages read after that one (must be 0)
  tessera::v1::GenerateResponse final_message;       // the one with the finish_reason
  std::chrono::microseconds first_token_latency{0};  // call start to first token
  bool cancelled = false;                            // the client called TryCancel()
};

// Runs one Worker.Generate call to its end.
StreamResult RunGenerate(tessera::v1::Worker::Stub& stub,
                         const tessera::v1::GenerateRequest& request,
                         const StreamOptions& options = {});

// Many Generate calls running at once, one thread each: for tests that act
// (signal, kill, drain) while streams are in flight. Thread-safe.
class StreamGroup {
 public:
  // Starts one call per request; `stub` must outlive the group.
  StreamGroup(tessera::v1::Worker::Stub& stub, std::vector<tessera::v1::GenerateRequest> requests,
              const StreamOptions& options = {});
  StreamGroup(const StreamGroup&) = delete;
  StreamGroup& operator=(const StreamGroup&) = delete;
  ~StreamGroup();  // joins

  // Calls that have received at least one token.
  int streaming() const { return streaming_.load(); }
  // Polls until every call received a token, or `timeout` passes.
  bool WaitAllStreaming(std::chrono::milliseconds timeout) const;
  // Waits for every call to end; results in request order. Call once.
  std::vector<StreamResult> Join();

 private:
  std::atomic<int> streaming_{0};
  std::vector<StreamResult> results_;
  std::vector<std::thread> threads_;
};

// A greedy (temperature 0), ignore_eos request for `prompt`.
tessera::v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& prompt, int max_tokens,
                                           const std::string& request_id = "");

// "status CODE: message" for test failure messages.
std::string Describe(const grpc::Status& status);

}  // namespace tessera::testing
