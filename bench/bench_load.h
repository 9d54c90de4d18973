// tessera-bench's load, independent of the wire: the requests a workload
// makes (RequestSource), what one call measured (CallRecord), the interface a
// wire implements (Transport: gRPC in grpc_calls.h, the OpenAI HTTP API in
// openai_calls.h), and the Driver that sends requests on the arrival schedule
// within the concurrency cap and collects the records.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_options.h"

namespace tessera::bench {

// One request to send. Every request has ignore_eos, so it produces exactly
// max_tokens tokens; it is greedy, or samples with its own seed
// (--temperature).
struct Planned {
  int64_t index = 0;
  std::string request_id;  // "bench-SEED-INDEX"
  std::vector<int32_t> prompt;
  int max_tokens = 0;
  float temperature = 0;  // 0: greedy
  uint64_t seed = 0;      // the sampling seed when temperature > 0
  int session = -1;       // multi-turn: the conversation this turn belongs to
};

// Makes the requests of the workload. Not thread-safe: the Driver calls it
// under its lock.
class RequestSource {
 public:
  explicit RequestSource(const Options& o);
  // Sends exactly `fixed`, in order (--replay).
  RequestSource(const Options& o, std::vector<Planned> fixed);

  // False while every multi-turn session has a turn in flight.
  bool Ready() const { return o_.workload != Workload::kMultiTurn || !idle_.empty(); }

  // The next request; needs Ready().
  Planned Next();

  // A multi-turn request ended: on success its output joins the history
  // (the next turn's prompt starts with prompt + output); on failure the
  // session starts over. The session is free for its next turn.
  void Done(const Planned& p, bool ok, const std::vector<int32_t>& output);

 private:
  struct Session {
    int turn = 0;  // turns sent in the current conversation
    std::vector<int32_t> history;
  };

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::vector<int32_t> RandomTokens(int n);

  const Options& o_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<int32_t> token_;
  int64_t next_index_ = 0;
  std::vector<std::vector<int32_t>> prefixes_;
  std::vector<Session> sessions_;
  std::deque<int> idle_;
  std::vector<Planned> fixed_;  // --replay: what Next() returns, in order
};

// What one call measured. Times are steady-clock.
struct CallRecord {
  Clock::time_point scheduled;  // when the arrival process wanted it sent
  Clock::time_point sent;
  Clock::time_point first_token;  // the first message (gRPC) / chunk (HTTP) with output
  Clock::time_point last_token;
  Clock::time_point done;
  // Empty when the call succeeded; else its category: a gRPC status code's
  // name, FINISH_ERROR, FINISH_ABORT, NO_FINISH (gRPC); HTTP_<status>,
  // SSE_ERROR, NO_FINISH, CONNECT_FAILED, TIMEOUT, CONNECTION_RESET,
  // CONNECTION_CLOSED, IO_ERROR, BAD_RESPONSE (openai).
  std::string failure;
  std::string error;          // the server's or the socket's message
  bool disconnected = false;  // the client hung up on purpose (--disconnect-after-tokens)
  int64_t output_tokens = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  // The server's own Timings.time_to_first_token_us (arrival at the worker
  // to its first token), when the final message carried it (gRPC only).
  std::optional<double> server_ttft_ms;
  std::vector<double> itl_ms;  // one entry per token after the first message

  bool ok() const { return failure.empty() && !disconnected; }
};

// Told when a call ends.
class CallSink {
 public:
  virtual ~CallSink() = default;
  // Called exactly once per started call, from any thread. `output` holds
  // the output token ids when the transport knows them (gRPC, with
  // multi-turn, --record or --replay), else is empty.
  virtual void Finished(const Planned& plan, CallRecord record,
                        const std::vector<int32_t>& output) = 0;
};

// A wire that carries calls. Thread-safe: Start is called from the Driver's
// thread while earlier calls end on the transport's threads.
class Transport {
 public:
  virtual ~Transport() = default;
  // Starts one call without blocking on the network; its record (with
  // `scheduled` set, `sent` when it went out) goes to sink->Finished.
  // `seq` counts the calls from 0 (to spread them over connections).
  virtual void Start(Planned plan, Clock::time_point scheduled, int64_t seq, CallSink* sink) = 0;
};

// Sends the requests on the arrival schedule within the concurrency cap, and
// collects the records. Run() is called once, from one thread; Finished comes
// from the transport's threads.
class Driver final : public CallSink {
 public:
  // Told of every call as it ends (under the driver's lock, so one at a
  // time): --record and --replay.
  using Observer = std::function<void(const Planned& plan, const CallRecord& record,
                                      const std::vector<int32_t>& output)>;

  // `fixed`: send exactly these requests (--replay) instead of the workload.
  Driver(const Options& o, Transport* transport, Observer observer = nullptr,
         std::optional<std::vector<Planned>> fixed = std::nullopt);

  // Runs the whole load; returns the records and the wall time from the
  // first send to the last completion. Every call has a deadline
  // (--timeout), so this ends.
  std::vector<CallRecord> Run(double* wall_s) ABSL_LOCKS_EXCLUDED(mu_);

  void Finished(const Planned& plan, CallRecord record, const std::vector<int32_t>& output) override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Clock::duration NextGap();

  const Options& o_;
  Transport* const transport_;
  const Observer observer_;
  absl::Mutex mu_;
  RequestSource source_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<CallRecord> records_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 arrival_rng_;  // the dispatcher's (Run's) thread only
};

}  // namespace tessera::bench
