// tessera-bench: a load generator over gRPC for Worker.Generate (a worker's
// leader, --service worker) or Llm.Generate (tessera-router or a worker,
// --service llm). Prompts are token ids in [3, --vocab-size), so no tokenizer
// is involved; every request is greedy with ignore_eos, so it produces exactly
// its max_tokens.
//
// Arrivals (when requests are sent):
//   closed loop (default)  --concurrency streams kept busy (default 8)
//   --rate R               Poisson arrivals, R requests/s on average
//   --fixed-rate R         one request every 1/R s
// With a rate, --concurrency caps the requests in flight (default: no cap); an
// arrival that finds the cap reached waits for a free slot (its wait shows as
// "send lag"). The run ends after --requests N requests or --duration S
// seconds of arrivals, whichever comes first (default 64 requests); requests
// in flight then finish.
//
// Workloads:
//   random         prompt lengths uniform in [--prompt-len, --prompt-len-max]
//   shared-prefix  --groups G shared system prompts of --prefix-len tokens;
//                  each request = a random group's prefix + --suffix-len random
//                  tokens (the prefix cache's and prefix-aware placement's case)
//   multi-turn     --sessions S conversations; each turn's prompt = the previous
//                  prompt + its output + --turn-len new user tokens, for
//                  --turns turns (then the session starts a new conversation);
//                  a session has one turn in flight at a time
// Output lengths are uniform in [--max-tokens, --max-tokens-max].
//
// Report (stdout; with --json - the table goes to stderr and stdout gets one
// JSON document; --json FILE writes it there):
//   - completed / failed requests, failures by gRPC status code;
//   - requests/s and output tokens/s over the wall time;
//   - latency p50/p90/p99/mean/max in ms, from the moment a call is sent:
//     TTFT, inter-token, end-to-end; with a rate, "send lag" (how late sends
//     were against the arrival schedule); when the final message carries the
//     worker's Timings, "server TTFT" (arrival at the worker to its first
//     token) and "TTFT outside" (TTFT - server TTFT per request: the time
//     outside the worker, in the network, gRPC and any router in between);
//   - the prefix-cache hit rate over the run: from the responses' usage
//     (cached_prompt_tokens / prompt_tokens) and, with --admin ADDR (the
//     router's admin port) or when the target is a worker, from the server's
//     counters (delta of GetClusterStatus / GetLoad prefix_cache_hit_tokens /
//     prefix_cache_queried_tokens before and after).
//
// Calls use gRPC's callback API: one dispatcher thread sends, gRPC's threads
// take the stream messages and timestamp them as they arrive, so one process
// sustains thousands of requests/s. Exits 1 when any call failed, 2 on a usage
// error.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/llm.grpc.pb.h"
#include "tessera/v1/worker.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address HOST:PORT");
ABSL_FLAG(std::string, service, "worker", "worker (tessera.v1.Worker) or llm (tessera.v1.Llm)");
ABSL_FLAG(std::string, api_key, "", "Sent as 'authorization: Bearer KEY' (a router's --api-key)");
ABSL_FLAG(int, channels, 1,
          "gRPC channels (TCP connections) to spread the calls over, round robin");
// Arrivals and length of the run.
ABSL_FLAG(double, rate, 0, "Poisson arrivals at this many requests/s (0 = closed loop)");
ABSL_FLAG(double, fixed_rate, 0, "Evenly spaced arrivals at this many requests/s");
ABSL_FLAG(int, concurrency, 0,
          "Requests in flight at most; 0 = 8 in closed loop, no cap with --rate/--fixed-rate");
ABSL_FLAG(int, requests, 0, "Requests in total (0 = 64 unless --duration is given)");
ABSL_FLAG(double, duration, 0, "Seconds of arrivals (0 = until --requests)");
// Workload.
ABSL_FLAG(std::string, workload, "random", "random, shared-prefix or multi-turn");
ABSL_FLAG(int, prompt_len, 32,
          "random: prompt length in tokens (lower bound with --prompt-len-max); multi-turn: "
          "the first turn's prompt");
ABSL_FLAG(int, prompt_len_max, 0, "Upper bound of the prompt length (0 = --prompt-len)");
ABSL_FLAG(int, max_tokens, 64, "Output tokens per call (ignore_eos, so exactly this many)");
ABSL_FLAG(int, max_tokens_max, 0,
          "Upper bound of the output length, drawn uniformly per call (0 = --max-tokens)");
ABSL_FLAG(int, groups, 8, "shared-prefix: number of distinct shared prefixes");
ABSL_FLAG(int, prefix_len, 256, "shared-prefix: tokens of each shared prefix");
ABSL_FLAG(int, suffix_len, 32, "shared-prefix: random tokens after the prefix");
ABSL_FLAG(int, sessions, 16, "multi-turn: conversations");
ABSL_FLAG(int, turns, 4, "multi-turn: turns per conversation");
ABSL_FLAG(int, turn_len, 32, "multi-turn: new user tokens per turn");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the prompts, lengths and arrival times");
ABSL_FLAG(int, vocab_size, 500, "Prompt token ids are drawn from [3, vocab_size)");
ABSL_FLAG(int, timeout, 600, "Deadline of each call in seconds");
// Reporting.
ABSL_FLAG(std::string, json, "", "Also write the report as JSON to this file (- = stdout)");
ABSL_FLAG(std::string, admin, "",
          "Router admin address: report the cluster's prefix-cache hit rate over the run");
ABSL_FLAG(std::string, admin_token, "", "Bearer token for --admin (default $TESSERA_ADMIN_TOKEN)");

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// ---------------------------------------------------------------- options

enum class Workload { kRandom, kSharedPrefix, kMultiTurn };

struct Options {
  std::string target;
  bool worker_service = true;
  std::string api_key;
  int channels = 1;
  double rate = 0;  // 0: closed loop
  bool poisson = false;
  int concurrency = 8;   // 0: no cap
  int64_t requests = 0;  // 0: no limit (duration only)
  double duration_s = 0;
  Workload workload = Workload::kRandom;
  std::string workload_name;
  int prompt_len = 0, prompt_len_max = 0;
  int max_tokens = 0, max_tokens_max = 0;
  int groups = 0, prefix_len = 0, suffix_len = 0;
  int sessions = 0, turns = 0, turn_len = 0;
  uint64_t seed = 0;
  int vocab_size = 0;
  int timeout_s = 0;
  std::string json;
  std::string admin;
  std::string admin_token;
};

absl::StatusOr<Options> OptionsFromFlags() {
  Options o;
  o.target = absl::GetFlag(FLAGS_target);
  const std::string service = absl::GetFlag(FLAGS_service);
  if (service != "worker" && service != "llm") {
    return absl::InvalidArgumentError("--service must be worker or llm, got " + service);
  }
  o.worker_service = service == "worker";
  o.api_key = absl::GetFlag(FLAGS_api_key);
  o.channels = absl::GetFlag(FLAGS_channels);
  const double rate = absl::GetFlag(FLAGS_rate);
  const double fixed_rate = absl::GetFlag(FLAGS_fixed_rate);
  if (rate < 0 || fixed_rate < 0 || !std::isfinite(rate) || !std::isfinite(fixed_rate)) {
    return absl::InvalidArgumentError("--rate and --fixed-rate must be >= 0");
  }
  if (rate > 0 && fixed_rate > 0) {
    return absl::InvalidArgumentError("give --rate (Poisson) or --fixed-rate, not both");
  }
  o.rate = rate > 0 ? rate : fixed_rate;
  o.poisson = rate > 0;
  o.concurrency = absl::GetFlag(FLAGS_concurrency);
  if (o.concurrency == 0 && o.rate == 0) o.concurrency = 8;
  o.requests = absl::GetFlag(FLAGS_requests);
  o.duration_s = absl::GetFlag(FLAGS_duration);
  if (o.requests == 0 && o.duration_s == 0) o.requests = 64;
  o.workload_name = absl::GetFlag(FLAGS_workload);
  if (o.workload_name == "random") {
    o.workload = Workload::kRandom;
  } else if (o.workload_name == "shared-prefix") {
    o.workload = Workload::kSharedPrefix;
  } else if (o.workload_name == "multi-turn") {
    o.workload = Workload::kMultiTurn;
  } else {
    return absl::InvalidArgumentError(
        "--workload must be random, shared-prefix or multi-turn, got " + o.workload_name);
  }
  o.prompt_len = absl::GetFlag(FLAGS_prompt_len);
  o.prompt_len_max = std::max(o.prompt_len, absl::GetFlag(FLAGS_prompt_len_max));
  o.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  o.max_tokens_max = std::max(o.max_tokens, absl::GetFlag(FLAGS_max_tokens_max));
  o.groups = absl::GetFlag(FLAGS_groups);
  o.prefix_len = absl::GetFlag(FLAGS_prefix_len);
  o.suffix_len = absl::GetFlag(FLAGS_suffix_len);
  o.sessions = absl::GetFlag(FLAGS_sessions);
  o.turns = absl::GetFlag(FLAGS_turns);
  o.turn_len = absl::GetFlag(FLAGS_turn_len);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.vocab_size = absl::GetFlag(FLAGS_vocab_size);
  o.timeout_s = absl::GetFlag(FLAGS_timeout);
  o.json = absl::GetFlag(FLAGS_json);
  o.admin = absl::GetFlag(FLAGS_admin);
  o.admin_token = absl::GetFlag(FLAGS_admin_token);
  if (o.admin_token.empty()) {
    if (const char* env = std::getenv("TESSERA_ADMIN_TOKEN")) o.admin_token = env;
  }

  if (o.channels < 1) return absl::InvalidArgumentError("--channels must be >= 1");
  if (o.concurrency < 0) return absl::InvalidArgumentError("--concurrency must be >= 0");
  if (o.requests < 0 || o.duration_s < 0 || !std::isfinite(o.duration_s)) {
    return absl::InvalidArgumentError("--requests and --duration must be >= 0");
  }
  if (o.prompt_len < 1 || o.max_tokens < 1) {
    return absl::InvalidArgumentError("--prompt-len and --max-tokens must be positive");
  }
  if (o.workload == Workload::kSharedPrefix &&
      (o.groups < 1 || o.prefix_len < 1 || o.suffix_len < 0)) {
    return absl::InvalidArgumentError(
        "shared-prefix needs --groups >= 1, --prefix-len >= 1 and --suffix-len >= 0");
  }
  if (o.workload == Workload::kMultiTurn && (o.sessions < 1 || o.turns < 1 || o.turn_len < 1)) {
    return absl::InvalidArgumentError("multi-turn needs --sessions, --turns and --turn-len >= 1");
  }
  if (o.vocab_size < 4) return absl::InvalidArgumentError("--vocab-size must be >= 4");
  if (o.timeout_s < 1) return absl::InvalidArgumentError("--timeout must be >= 1");
  return o;
}

// ---------------------------------------------------------------- workloads

// One request to send: its message, and for multi-turn its session.
struct Planned {
  int64_t index = 0;
  v1::GenerateRequest request;
  int session = -1;
};

// Makes the requests. Called by the dispatcher under the driver's lock (one
// thread at a time); not thread-safe on its own.
class RequestSource {
 public:
  explicit RequestSource(const Options& o)
      : o_(o), rng_(o.seed * 0x9E3779B97F4A7C15ULL + 1), token_(3, o.vocab_size - 1) {
    if (o_.workload == Workload::kSharedPrefix) {
      for (int g = 0; g < o_.groups; ++g) prefixes_.push_back(RandomTokens(o_.prefix_len));
    }
    if (o_.workload == Workload::kMultiTurn) {
      sessions_.resize(o_.sessions);
      for (int s = 0; s < o_.sessions; ++s) idle_.push_back(s);
    }
  }

  // False while every multi-turn session has a turn in flight.
  bool Ready() const { return o_.workload != Workload::kMultiTurn || !idle_.empty(); }

  // The next request; needs Ready().
  Planned Next() {
    Planned p;
    p.index = next_index_++;
    v1::GenerateRequest& req = p.request;
    req.set_request_id(absl::StrCat("bench-", o_.seed, "-", p.index));
    std::vector<int32_t> prompt;
    switch (o_.workload) {
      case Workload::kRandom:
        prompt = RandomTokens(Uniform(o_.prompt_len, o_.prompt_len_max));
        break;
      case Workload::kSharedPrefix: {
        prompt = prefixes_[Uniform(0, o_.groups - 1)];
        const std::vector<int32_t> suffix = RandomTokens(o_.suffix_len);
        prompt.insert(prompt.end(), suffix.begin(), suffix.end());
        break;
      }
      case Workload::kMultiTurn: {
        p.session = idle_.front();
        idle_.pop_front();
        Session& s = sessions_[p.session];
        if (s.turn == 0 || s.turn >= o_.turns) {  // a new conversation
          s.turn = 0;
          s.history = RandomTokens(Uniform(o_.prompt_len, o_.prompt_len_max));
        } else {
          const std::vector<int32_t> user = RandomTokens(o_.turn_len);
          s.history.insert(s.history.end(), user.begin(), user.end());
        }
        ++s.turn;
        prompt = s.history;
        break;
      }
    }
    for (int32_t t : prompt) req.mutable_token_ids()->add_ids(t);
    auto* sampling = req.mutable_sampling();
    sampling->set_max_tokens(Uniform(o_.max_tokens, o_.max_tokens_max));
    sampling->set_temperature(0.0f);
    sampling->set_ignore_eos(true);
    return p;
  }

  // A multi-turn request ended: on success its output joins the history
  // (the next turn's prompt starts with prompt + output); on failure the
  // session starts over. The session is free for its next turn.
  void Done(const Planned& p, bool ok, const std::vector<int32_t>& output) {
    if (p.session < 0) return;
    Session& s = sessions_[p.session];
    if (ok) {
      s.history.insert(s.history.end(), output.begin(), output.end());
    } else {
      s.turn = 0;
    }
    idle_.push_back(p.session);
  }

 private:
  struct Session {
    int turn = 0;  // turns sent in the current conversation
    std::vector<int32_t> history;
  };

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::vector<int32_t> RandomTokens(int n) {
    std::vector<int32_t> t(n);
    for (int32_t& id : t) id = token_(rng_);
    return t;
  }

  const Options& o_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<int32_t> token_;
  int64_t next_index_ = 0;
  std::vector<std::vector<int32_t>> prefixes_;
  std::vector<Session> sessions_;
  std::deque<int> idle_;
};

// ---------------------------------------------------------------- calls

// What one call measured. Times are steady-clock.
struct CallRecord {
  Clock::time_point scheduled;  // when the arrival process wanted it sent
  Clock::time_point sent;
  Clock::time_point first_token;
  Clock::time_point last_token;
  Clock::time_point done;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string error;
  bool finished = false;  // a message carried a finish reason
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  int64_t output_tokens = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  // The server's own Timings.time_to_first_token_us (arrival at the worker
  // to its first token), when the final message carried it.
  std::optional<double> server_ttft_ms;
  std::vector<double> itl_ms;  // one entry per token after the first message

  bool ok() const {
    return code == grpc::StatusCode::OK && finished && finish_reason != v1::FINISH_REASON_ERROR &&
           finish_reason != v1::FINISH_REASON_ABORT;
  }
  // The failure's category: the status code's name, or FINISH_ERROR,
  // FINISH_ABORT, NO_FINISH for a stream that ended OK but not well.
  std::string FailureKind() const {
    if (code != grpc::StatusCode::OK) {
      return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    }
    if (!finished) return "NO_FINISH";
    return finish_reason == v1::FINISH_REASON_ABORT ? "FINISH_ABORT" : "FINISH_ERROR";
  }
};

class Driver;

// One streaming Generate call, on gRPC's callback API. Deletes itself when
// done, after handing its record to the driver.
class Call final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  Call(Driver* driver, Planned plan, Clock::time_point scheduled, bool keep_tokens)
      : driver_(driver), plan_(std::move(plan)), keep_tokens_(keep_tokens) {
    record_.scheduled = scheduled;
  }

  void Start(v1::Worker::Stub* worker, v1::Llm::Stub* llm, const Options& o) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
    if (!o.api_key.empty()) ctx_.AddMetadata("authorization", "Bearer " + o.api_key);
    if (worker != nullptr) {
      worker->async()->Generate(&ctx_, &plan_.request, this);
    } else {
      llm->async()->Generate(&ctx_, &plan_.request, this);
    }
    StartRead(&msg_);
    record_.sent = Clock::now();
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    const auto now = Clock::now();
    const int n = msg_.token_ids_size();
    if (n > 0) {
      if (record_.output_tokens == 0) {
        record_.first_token = now;
      } else {
        const double gap = Ms(now - record_.last_token) / n;
        for (int i = 0; i < n; ++i) record_.itl_ms.push_back(gap);
      }
      record_.last_token = now;
      record_.output_tokens += n;
      if (keep_tokens_)
        output_.insert(output_.end(), msg_.token_ids().begin(), msg_.token_ids().end());
    }
    if (msg_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      record_.finished = true;
      record_.finish_reason = msg_.finish_reason();
      record_.prompt_tokens = msg_.usage().prompt_tokens();
      record_.cached_prompt_tokens = msg_.usage().cached_prompt_tokens();
      if (msg_.has_timings() && msg_.timings().time_to_first_token_us() > 0) {
        record_.server_ttft_ms = msg_.timings().time_to_first_token_us() / 1000.0;
      }
      if (msg_.finish_reason() == v1::FINISH_REASON_ERROR) record_.error = msg_.error_message();
    }
    StartRead(&msg_);
  }

  void OnDone(const grpc::Status& status) override;

 private:
  Driver* driver_;
  Planned plan_;
  const bool keep_tokens_;
  grpc::ClientContext ctx_;
  v1::GenerateResponse msg_;
  CallRecord record_;
  std::vector<int32_t> output_;
};

// Sends the requests on the arrival schedule within the concurrency cap, and
// collects the records. Run() is called once, from one thread; Call::OnDone
// reports from gRPC's threads.
class Driver {
 public:
  Driver(const Options& o, std::vector<std::shared_ptr<grpc::Channel>> channels)
      : o_(o), source_(o), arrival_rng_(o.seed * 31 + 7) {
    for (auto& ch : channels) {
      if (o_.worker_service) {
        workers_.push_back(v1::Worker::NewStub(ch));
      } else {
        llms_.push_back(v1::Llm::NewStub(ch));
      }
    }
  }

  // Runs the whole load; returns the records and the wall time from the
  // first send to the last completion.
  std::vector<CallRecord> Run(double* wall_s) ABSL_LOCKS_EXCLUDED(mu_) {
    const auto start = Clock::now();
    const bool timed = o_.duration_s > 0;
    const auto window = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(timed ? o_.duration_s : 0.0));
    const auto arrivals_end = start + window;
    const absl::Time arrivals_end_abs = absl::Now() + absl::FromChrono(window);
    auto next_arrival = start;
    int64_t sent = 0;
    while (o_.requests == 0 || sent < o_.requests) {
      if (o_.rate > 0) {
        if (timed && next_arrival >= arrivals_end) break;
        std::this_thread::sleep_until(next_arrival);
      } else if (timed && Clock::now() >= arrivals_end) {
        break;
      }
      Planned plan;
      {
        absl::MutexLock lock(&mu_);
        // A free slot (and, multi-turn, an idle session); past the end of
        // the arrivals window nothing more is sent.
        auto can_send = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return (o_.concurrency == 0 || in_flight_ < o_.concurrency) && source_.Ready();
        };
        if (timed) {
          if (!mu_.AwaitWithDeadline(absl::Condition(&can_send), arrivals_end_abs)) break;
        } else {
          mu_.Await(absl::Condition(&can_send));
        }
        plan = source_.Next();
        ++in_flight_;
      }
      const auto scheduled = o_.rate > 0 ? next_arrival : Clock::now();
      auto* call = new Call(this, std::move(plan), scheduled, o_.workload == Workload::kMultiTurn);
      const size_t c = static_cast<size_t>(sent) % std::max(workers_.size(), llms_.size());
      call->Start(o_.worker_service ? workers_[c].get() : nullptr,
                  o_.worker_service ? nullptr : llms_[c].get(), o_);
      ++sent;
      if (o_.rate > 0) next_arrival += NextGap();
    }
    absl::MutexLock lock(&mu_);
    // Every call has its deadline (--timeout), so this ends.
    mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &in_flight_));
    *wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    return std::move(records_);
  }

  // A call ended (from gRPC's threads).
  void Finished(const Planned& plan, CallRecord record, const std::vector<int32_t>& output)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    source_.Done(plan, record.ok(), output);
    records_.push_back(std::move(record));
    --in_flight_;
  }

 private:
  Clock::duration NextGap() {
    const double seconds =
        o_.poisson ? std::exponential_distribution<double>(o_.rate)(arrival_rng_) : 1.0 / o_.rate;
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

  const Options& o_;
  std::vector<std::unique_ptr<v1::Worker::Stub>> workers_;
  std::vector<std::unique_ptr<v1::Llm::Stub>> llms_;
  absl::Mutex mu_;
  RequestSource source_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<CallRecord> records_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 arrival_rng_;  // the dispatcher's (Run's) thread only
};

void Call::OnDone(const grpc::Status& status) {
  record_.done = Clock::now();
  record_.code = status.error_code();
  if (!status.ok()) record_.error = status.error_message();
  if (status.ok() && !record_.finished) record_.error = "stream ended without a finish_reason";
  driver_->Finished(plan_, std::move(record_), output_);
  delete this;
}

// ---------------------------------------------------------------- prefix counters

struct PrefixCounters {
  int64_t queried = 0;
  int64_t hit = 0;
  bool operator==(const PrefixCounters&) const = default;
};

// Reads the prefix-cache counters: the router's GetClusterStatus with
// --admin, else the target's Worker.GetLoad when the target is a worker;
// nullopt when neither applies (or the call failed, which is logged).
class PrefixCounterSource {
 public:
  PrefixCounterSource(const Options& o, std::shared_ptr<grpc::Channel> target_channel) : o_(o) {
    if (!o.admin.empty()) {
      admin_ = v1::Admin::NewStub(grpc::CreateChannel(o.admin, grpc::InsecureChannelCredentials()));
      name_ = "router " + o.admin;
    } else {
      // The target may be a worker (Worker.GetLoad) or not (a router answers
      // UNIMPLEMENTED: then there are no server counters).
      worker_ = v1::Worker::NewStub(std::move(target_channel));
      name_ = "worker " + o.target;
    }
  }

  bool enabled() const { return admin_ != nullptr || worker_ != nullptr; }
  const std::string& name() const { return name_; }

  std::optional<PrefixCounters> Read() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status status;
    PrefixCounters c;
    if (admin_ != nullptr) {
      if (!o_.admin_token.empty()) ctx.AddMetadata("authorization", "Bearer " + o_.admin_token);
      v1::ClusterStatus s;
      status = admin_->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &s);
      c = {s.prefix_cache_queried_tokens(), s.prefix_cache_hit_tokens()};
    } else if (worker_ != nullptr) {
      v1::LoadReport r;
      status = worker_->GetLoad(&ctx, v1::GetLoadRequest(), &r);
      c = {r.prefix_cache_queried_tokens(), r.prefix_cache_hit_tokens()};
    } else {
      return std::nullopt;
    }
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && worker_ != nullptr) {
      worker_.reset();  // not a worker
      return std::nullopt;
    }
    if (!status.ok()) {
      std::fprintf(
          stderr, "tessera-bench: reading prefix-cache counters from %s failed: %s: %s\n",
          name_.c_str(),
          absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())).c_str(),
          status.error_message().c_str());
      return std::nullopt;
    }
    return c;
  }

  // After the run. A worker's counters are current; the router's come from
  // its periodic polls of the workers, so read until two reads 0.6 s apart
  // agree (at most ~5 s).
  std::optional<PrefixCounters> ReadSettled() {
    std::optional<PrefixCounters> last = Read();
    if (admin_ == nullptr) return last;
    for (int i = 0; i < 8 && last.has_value(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      std::optional<PrefixCounters> now = Read();
      if (!now.has_value() || *now == *last) return now;
      last = now;
    }
    return last;
  }

 private:
  const Options& o_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Worker::Stub> worker_;
  std::string name_;
};

// ---------------------------------------------------------------- report

struct Distribution {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, max = 0;
  size_t count = 0;
};

Distribution Summarize(std::vector<double> v) {
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto at = [&v](double p) {
    return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
  };
  d.p50 = at(0.5);
  d.p90 = at(0.9);
  d.p99 = at(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  d.mean = sum / v.size();
  d.max = v.back();
  return d;
}

nlohmann::ordered_json ToJson(const Distribution& d) {
  return {{"p50", d.p50},   {"p90", d.p90}, {"p99", d.p99},
          {"mean", d.mean}, {"max", d.max}, {"count", d.count}};
}

std::string WorkloadDescription(const Options& o) {
  auto range = [](int lo, int hi) {
    return lo == hi ? absl::StrCat(lo) : absl::StrCat(lo, "-", hi);
  };
  std::string w;
  switch (o.workload) {
    case Workload::kRandom:
      w = absl::StrCat("random (prompt ", range(o.prompt_len, o.prompt_len_max), " tokens");
      break;
    case Workload::kSharedPrefix:
      w = absl::StrCat("shared-prefix (", o.groups, " groups, prefix ", o.prefix_len, " + suffix ",
                       o.suffix_len, " tokens");
      break;
    case Workload::kMultiTurn:
      w = absl::StrCat("multi-turn (", o.sessions, " sessions x ", o.turns, " turns, first ",
                       range(o.prompt_len, o.prompt_len_max), " + ", o.turn_len,
                       " tokens per turn");
      break;
  }
  return absl::StrCat(w, ", output ", range(o.max_tokens, o.max_tokens_max), " tokens)");
}

std::string ArrivalDescription(const Options& o) {
  const std::string cap =
      o.concurrency == 0 ? "no concurrency cap" : absl::StrCat("concurrency ", o.concurrency);
  std::string s = o.rate == 0 ? absl::StrCat("closed loop, ", cap)
                              : absl::StrFormat("%s %.1f req/s, %s",
                                                o.poisson ? "Poisson" : "fixed rate", o.rate, cap);
  if (o.requests > 0) absl::StrAppend(&s, ", ", o.requests, " requests");
  if (o.duration_s > 0) absl::StrAppend(&s, absl::StrFormat(", %.1f s", o.duration_s));
  return s;
}

int Run() {
  absl::StatusOr<Options> parsed = OptionsFromFlags();
  if (!parsed.ok()) {
    std::fprintf(stderr, "tessera-bench: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  const Options& o = *parsed;

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    // Distinct arguments give each channel its own connection.
    args.SetInt("tessera.bench.channel", i);
    channels.push_back(
        grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(30))) {
      std::fprintf(stderr, "tessera-bench: cannot connect to %s within 30 s\n", o.target.c_str());
      return 1;
    }
  }

  PrefixCounterSource counters(o, channels[0]);
  std::optional<PrefixCounters> before;
  if (counters.enabled()) before = counters.Read();

  Driver driver(o, channels);
  double wall_s = 0;
  const std::vector<CallRecord> records = driver.Run(&wall_s);

  std::optional<PrefixCounters> after;
  if (before.has_value()) after = counters.ReadSettled();

  // ---- aggregate
  int64_t completed = 0, output_tokens = 0, prompt_tokens = 0, cached_tokens = 0;
  std::map<std::string, int64_t> failures;
  std::vector<double> ttft, itl, e2e, lag, server_ttft, outside_ttft;
  int printed_errors = 0;
  for (const CallRecord& r : records) {
    output_tokens += r.output_tokens;
    if (o.rate > 0) lag.push_back(Ms(r.sent - r.scheduled));
    if (!r.ok()) {
      ++failures[r.FailureKind()];
      if (printed_errors++ < 5) {
        std::fprintf(stderr, "tessera-bench: a call failed: %s: %s\n", r.FailureKind().c_str(),
                     r.error.c_str());
      }
      continue;
    }
    ++completed;
    prompt_tokens += r.prompt_tokens;
    cached_tokens += r.cached_prompt_tokens;
    if (r.output_tokens > 0) {
      ttft.push_back(Ms(r.first_token - r.sent));
      if (r.server_ttft_ms.has_value()) {
        server_ttft.push_back(*r.server_ttft_ms);
        outside_ttft.push_back(ttft.back() - *r.server_ttft_ms);
      }
    }
    e2e.push_back(Ms(r.done - r.sent));
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
  }
  const int64_t failed = static_cast<int64_t>(records.size()) - completed;
  const Distribution d_server_ttft = Summarize(server_ttft),
                     d_outside_ttft = Summarize(outside_ttft);
  const Distribution d_ttft = Summarize(ttft), d_itl = Summarize(itl), d_e2e = Summarize(e2e),
                     d_lag = Summarize(lag);
  const double req_per_s = wall_s > 0 ? completed / wall_s : 0;
  const double tok_per_s = wall_s > 0 ? output_tokens / wall_s : 0;
  std::optional<double> usage_hit;
  if (prompt_tokens > 0) usage_hit = static_cast<double>(cached_tokens) / prompt_tokens;
  std::optional<PrefixCounters> delta;
  if (before.has_value() && after.has_value()) {
    delta = PrefixCounters{after->queried - before->queried, after->hit - before->hit};
  }

  // ---- text report (stdout, or stderr when the JSON goes to stdout)
  std::FILE* text = o.json == "-" ? stderr : stdout;
  std::fprintf(text, "target: %s (%s)\n", o.target.c_str(), o.worker_service ? "worker" : "llm");
  std::fprintf(text, "workload: %s\n", WorkloadDescription(o).c_str());
  std::fprintf(text, "arrivals: %s\n", ArrivalDescription(o).c_str());
  std::fprintf(text, "requests: %lld (%lld failed)\n", static_cast<long long>(records.size()),
               static_cast<long long>(failed));
  for (const auto& [kind, n] : failures) {
    std::fprintf(text, "failed %s: %lld\n", kind.c_str(), static_cast<long long>(n));
  }
  std::fprintf(text, "output tokens: %lld\n", static_cast<long long>(output_tokens));
  std::fprintf(text, "wall time: %.3f s\n", wall_s);
  std::fprintf(text, "requests/s: %.2f\n", req_per_s);
  std::fprintf(text, "output tokens/s: %.1f\n", tok_per_s);
  if (usage_hit.has_value()) {
    std::fprintf(text, "prefix cache hit (usage): %.2f%% (%lld of %lld prompt tokens)\n",
                 100 * *usage_hit, static_cast<long long>(cached_tokens),
                 static_cast<long long>(prompt_tokens));
  }
  if (delta.has_value()) {
    std::fprintf(text, "prefix cache hit (%s counters): %.2f%% (%lld of %lld tokens)\n",
                 counters.name().c_str(),
                 delta->queried > 0 ? 100.0 * delta->hit / delta->queried : 0.0,
                 static_cast<long long>(delta->hit), static_cast<long long>(delta->queried));
  }
  std::fprintf(text, "%-14s %10s %10s %10s %10s %10s\n", "latency (ms)", "p50", "p90", "p99",
               "mean", "max");
  auto row = [text](const char* name, const Distribution& d) {
    std::fprintf(text, "%-14s %10.2f %10.2f %10.2f %10.2f %10.2f\n", name, d.p50, d.p90, d.p99,
                 d.mean, d.max);
  };
  row("TTFT", d_ttft);
  if (d_server_ttft.count > 0) {
    row("server TTFT", d_server_ttft);
    row("TTFT outside", d_outside_ttft);
  }
  row("inter-token", d_itl);
  row("end-to-end", d_e2e);
  if (o.rate > 0) row("send lag", d_lag);
  std::fflush(text);

  // ---- JSON report
  if (!o.json.empty()) {
    nlohmann::ordered_json failed_by;
    for (const auto& [kind, n] : failures) failed_by[kind] = n;
    nlohmann::ordered_json j = {
        {"target", o.target},
        {"service", o.worker_service ? "worker" : "llm"},
        {"workload", o.workload_name},
        {"workload_description", WorkloadDescription(o)},
        {"arrivals", ArrivalDescription(o)},
        {"rate", o.rate},
        {"poisson", o.poisson},
        {"concurrency", o.concurrency},
        {"requests", static_cast<int64_t>(records.size())},
        {"completed", completed},
        {"failed", failed},
        {"failed_by_code", failed_by.is_null() ? nlohmann::ordered_json::object() : failed_by},
        {"wall_s", wall_s},
        {"requests_per_s", req_per_s},
        {"output_tokens", output_tokens},
        {"output_tokens_per_s", tok_per_s},
        {"prompt_tokens", prompt_tokens},
        {"cached_prompt_tokens", cached_tokens},
        {"prefix_cache_hit_rate_usage",
         usage_hit.has_value() ? nlohmann::ordered_json(*usage_hit) : nullptr},
        {"ttft_ms", ToJson(d_ttft)},
        {"server_ttft_ms", d_server_ttft.count > 0 ? ToJson(d_server_ttft) : nullptr},
        {"ttft_outside_server_ms", d_outside_ttft.count > 0 ? ToJson(d_outside_ttft) : nullptr},
        {"itl_ms", ToJson(d_itl)},
        {"e2e_ms", ToJson(d_e2e)},
    };
    if (o.rate > 0) j["send_lag_ms"] = ToJson(d_lag);
    if (delta.has_value()) {
      j["prefix_cache"] = {
          {"source", counters.name()},
          {"queried_tokens", delta->queried},
          {"hit_tokens", delta->hit},
          {"hit_rate", delta->queried > 0 ? static_cast<double>(delta->hit) / delta->queried : 0.0},
      };
    } else {
      j["prefix_cache"] = nullptr;
    }
    if (o.json == "-") {
      std::cout << j.dump(2) << std::endl;
    } else {
      std::ofstream out(o.json);
      out << j.dump(2) << "\n";
      if (!out) {
        std::fprintf(stderr, "tessera-bench: cannot write %s\n", o.json.c_str());
        return 1;
      }
    }
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::ParseCommandLine(
      argc, argv,
      "tessera-bench: gRPC load generator (see bench/tessera_bench.cc for the details).\n"
      "  tessera-bench --target HOST:PORT [--service worker|llm]\n"
      "      [--rate R | --fixed-rate R] [--concurrency N] [--requests N | --duration S]\n"
      "      [--workload random|shared-prefix|multi-turn] [--prompt-len L] [--max-tokens T]\n"
      "      [--json FILE|-] [--admin ADDR --admin-token TOKEN]");
  return tessera::Run();
}
