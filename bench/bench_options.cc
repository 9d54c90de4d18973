#include "bench/bench_options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/cluster_flags.h"

// What to call.
ABSL_FLAG(std::string, api, "grpc",
          "grpc (tessera.v1 Generate, see --service) or openai (streaming POST /v1/completions "
          "on the router's HTTP port: --target is then the HTTP address)");
ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "Server address HOST:PORT (gRPC; with --api openai the router's --http-port). gRPC: "
          "several routers as IPV4:PORT,IPV4:PORT,... spreads the calls over them and retries "
          "a call whose router is gone (UNAVAILABLE before any response) on another");
ABSL_FLAG(std::string, service, "worker",
          "gRPC only: worker (tessera.v1.Worker, a worker's leader) or llm (tessera.v1.Llm, the "
          "router or a worker)");
ABSL_FLAG(std::string, api_key, "",
          "Sent as 'authorization: Bearer KEY' on every call (the router's --api-key)");
ABSL_FLAG(int, channels, 1,
          "gRPC only: channels (TCP connections) to spread the calls over, round robin");
ABSL_FLAG(int, http_threads, 2,
          "openai only: threads running the HTTP client (one connection per call in flight)");
ABSL_FLAG(std::string, model, "",
          "openai only: the requests' \"model\" (empty: the router's default model)");
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
ABSL_FLAG(int, disconnect_after_tokens, 0,
          "K >= 1: the client hangs up each call after its first K output chunks (openai: "
          "closes the socket; gRPC: cancels the call) and counts it as 'disconnected', not "
          "failed; a call that ends before K chunks counts as usual. 0 = off");
ABSL_FLAG(double, temperature, 0,
          "0: greedy. > 0: every request samples at this temperature with a seed of its own "
          "(derived from --seed and its index, so a run can be repeated exactly)");
// Recording and replay (gRPC): the exact-continuation check of bench/chaos.sh.
ABSL_FLAG(std::string, record, "",
          "gRPC only: write every call as one JSON line to this file: index, request_id, "
          "prompt, max_tokens, temperature, seed, failure (empty when OK), error, done_unix_s "
          "(when it ended), tokens (the output token ids received, in order)");
ABSL_FLAG(std::string, replay, "",
          "gRPC only: instead of a workload, send again every call of this --record file "
          "that completed OK (same prompt, length, temperature and seed; closed loop at "
          "--concurrency) and compare each output with the recorded one token for token. "
          "Reports how many differ and where; exits 1 if any does");
// Reporting.
ABSL_FLAG(std::string, json, "", "Also write the report as JSON to this file (- = stdout)");
ABSL_FLAG(std::string, admin, "",
          "Router admin address: report the cluster's prefix-cache hit rate over the run");
ABSL_FLAG(std::string, admin_token, "", "Bearer token for --admin (default $TESSERA_ADMIN_TOKEN)");

namespace tessera::bench {

absl::StatusOr<Options> OptionsFromFlags() {
  Options o;
  const std::string api = absl::GetFlag(FLAGS_api);
  if (api != "grpc" && api != "openai") {
    return absl::InvalidArgumentError("--api must be grpc or openai, got " + api);
  }
  o.api = api == "grpc" ? Api::kGrpc : Api::kOpenAi;
  o.target = absl::GetFlag(FLAGS_target);
  const std::string service = absl::GetFlag(FLAGS_service);
  if (service != "worker" && service != "llm") {
    return absl::InvalidArgumentError("--service must be worker or llm, got " + service);
  }
  o.worker_service = o.api == Api::kGrpc && service == "worker";
  o.api_key = absl::GetFlag(FLAGS_api_key);
  absl::StatusOr<api::ClusterCredentials> cluster = api::ClusterCredentialsFromFlags();
  if (!cluster.ok()) return cluster.status();
  o.cluster = *std::move(cluster);
  o.channels = absl::GetFlag(FLAGS_channels);
  o.http_threads = absl::GetFlag(FLAGS_http_threads);
  o.model = absl::GetFlag(FLAGS_model);
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
  o.disconnect_after_tokens = absl::GetFlag(FLAGS_disconnect_after_tokens);
  o.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  o.record = absl::GetFlag(FLAGS_record);
  o.replay = absl::GetFlag(FLAGS_replay);
  o.json = absl::GetFlag(FLAGS_json);
  o.admin = absl::GetFlag(FLAGS_admin);
  o.admin_token = absl::GetFlag(FLAGS_admin_token);
  if (o.admin_token.empty()) {
    if (const char* env = std::getenv("TESSERA_ADMIN_TOKEN")) o.admin_token = env;
  }

  if (o.channels < 1) return absl::InvalidArgumentError("--channels must be >= 1");
  if (o.http_threads < 1) return absl::InvalidArgumentError("--http-threads must be >= 1");
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
  if (!(o.temperature >= 0) || o.temperature > 100) {
    return absl::InvalidArgumentError("--temperature must be in [0, 100]");
  }
  if ((!o.record.empty() || !o.replay.empty()) && o.api != Api::kGrpc) {
    return absl::InvalidArgumentError(
        "--record and --replay need --api grpc (the HTTP API returns text, not token ids)");
  }
  if (!o.replay.empty() && (o.workload == Workload::kMultiTurn || o.disconnect_after_tokens > 0)) {
    return absl::InvalidArgumentError(
        "--replay sends the recorded calls: not with --workload multi-turn or "
        "--disconnect-after-tokens");
  }
  if (o.disconnect_after_tokens < 0) {
    return absl::InvalidArgumentError("--disconnect-after-tokens must be >= 0");
  }
  return o;
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

std::string ServiceName(const Options& o) {
  if (o.api == Api::kOpenAi) return "openai";
  return o.worker_service ? "worker" : "llm";
}

}  // namespace tessera::bench
