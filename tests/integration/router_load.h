// Client load through tessera-router for integration tests: one
// Llm.Generate call run to its end and recorded (status, tokens, which
// worker served it, when it started, got its first token and ended), and a
// LoadDriver that keeps `concurrency` such calls going, from a fixed list or
// until told to stop, so a test can drain / kill / add workers under load and
// then judge every call.
//
// Thread-safe: RunLlmGenerate may be called from many threads at once; a
// LoadDriver's methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::testing {

using SteadyTime = std::chrono::steady_clock::time_point;

// One Generate call through the router, as the client saw it.
struct CallRecord {
  int index = -1;  // the request's index in the driver's sequence
  grpc::Status status;
  std::vector<int32_t> tokens;  // every token_id received, in order
  int messages = 0;
  bool finished = false;  // some message had a finish_reason
  tessera::v1::FinishReason finish_reason = tessera::v1::FINISH_REASON_UNSPECIFIED;
  int messages_after_finish = 0;  // must be 0
  tessera::v1::Usage usage;       // from the final message
  std::string worker_id;          // GenerateResponse.worker_id (first non-empty)
  SteadyTime start;               // just before the call started
  std::optional<SteadyTime> first_token;
  SteadyTime end;  // after Finish() returned

  bool ok() const { return status.ok(); }
  // Started after `t` (so placed after it) / running at `t`.
  bool StartedAfter(SteadyTime t) const { return start > t; }
  bool RunningAt(SteadyTime t) const { return start < t && end > t; }
};

struct CallOptions {
  std::chrono::milliseconds deadline{60000};
  std::string api_key;  // sent as "authorization: Bearer KEY" when non-empty
  // Called (on the calling thread) after each message is read.
  std::function<void(const tessera::v1::GenerateResponse&)> on_message;
};

// Runs one Llm.Generate call to its end.
CallRecord RunLlmGenerate(tessera::v1::Llm::Stub& stub, const tessera::v1::GenerateRequest& request,
                          const CallOptions& options);

// `concurrency` threads, each taking the next request index and running it
// until make(index) returns nullopt or Stop() is called. Records come back
// in index order from Join().
class LoadDriver {
 public:
  using MakeRequest = std::function<std::optional<tessera::v1::GenerateRequest>(int index)>;

  // Starts the threads. `stub` must outlive the driver; `make` is called
  // from the driver's threads (it must be thread-safe).
  LoadDriver(tessera::v1::Llm::Stub& stub, int concurrency, MakeRequest make,
             CallOptions options = {});
  LoadDriver(const LoadDriver&) = delete;
  LoadDriver& operator=(const LoadDriver&) = delete;
  ~LoadDriver();  // stops and joins

  // No new calls start; running ones go on to their end.
  void Stop();
  // Waits until make() ran dry (or Stop() was called) and every call ended;
  // the records, in index order. Call once.
  std::vector<CallRecord> Join();
  // Stop(), then Join(): for endless request sources.
  std::vector<CallRecord> StopAndJoin();

  int completed() const;  // calls that ended (any status)
  int failed() const;     // calls that ended with a non-OK status
  // Running calls that have received between 1 and `max_tokens` tokens
  // from the worker `worker_id`.
  int StreamingFrom(const std::string& worker_id, int max_tokens = INT32_MAX) const;
  // Polls until `completed() >= n` or `timeout` passes.
  bool WaitCompleted(int n, std::chrono::milliseconds timeout) const;
  // A copy of the records of the calls that ended so far (any order).
  std::vector<CallRecord> Snapshot() const;

 private:
  void Run();

  tessera::v1::Llm::Stub& stub_;
  const MakeRequest make_;
  const CallOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_index_{0};
  mutable absl::Mutex mu_;
  std::vector<CallRecord> records_ ABSL_GUARDED_BY(mu_);
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
  // Running calls that have received tokens: index -> (worker id, tokens).
  std::map<int, std::pair<std::string, int>> streaming_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// A greedy, ignore_eos request for token ids `prompt` (runs exactly
// `max_tokens` steps).
tessera::v1::GenerateRequest GreedyLlmRequest(const std::vector<int32_t>& prompt, int max_tokens,
                                              const std::string& request_id = "");

// "N of M calls failed: <the first few, with status and tokens>" ("" when
// none failed).
std::string DescribeFailures(const std::vector<CallRecord>& records, size_t max_listed = 5);

// A prompt of `len` token ids for request `index`: BOS, then ids in
// [3, 512) drawn from a generator seeded with (seed, index). Distinct
// indices give (almost surely) distinct prompts.
std::vector<int32_t> VariedPrompt(uint64_t seed, int index, int len);

// A call that ran to its end (gtest expectations): OK, one message with
// finish_reason LENGTH and nothing after it, `max_tokens` tokens, usage that
// agrees.
void ExpectCompleteCall(const CallRecord& r, size_t prompt_len, int max_tokens,
                        const std::string& what);

// Whether `text` holds `n` as a whole number (not inside a longer digit run).
bool MentionsNumber(const std::string& text, int64_t n);

}  // namespace tessera::testing
