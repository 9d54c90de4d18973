// tessera-generate: offline batch generation. All prompts of one call run as
// one continuously batched workload. Runs under `mpirun -np N` for tensor
// parallelism (rank 0 reads prompts and prints; the others follow).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/cli.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/engine/sequence.h"
#include "worker/exec/replica_protocol.h"
#include "worker/flags.h"

ABSL_FLAG(std::string, prompt, "",
          "A text prompt (tokenized with the model's tokenizer, special tokens such as BOS added)");
ABSL_FLAG(std::string, prompt_ids, "", "A prompt as token ids, e.g. \"1 2 3\"");
ABSL_FLAG(std::string, prompts, "",
          "A JSONL file, one request a line: {\"prompt_token_ids\": [...] or \"prompt\": "
          "\"text\", \"max_tokens\": N, \"temperature\": T, \"top_p\", \"top_k\", \"min_p\", "
          "\"seed\": S, \"ignore_eos\": true, \"stop_token_ids\": [...], \"logprobs\": N, "
          "\"priority\": P, \"n\": N}; unset fields take the command-line values");
ABSL_FLAG(int, max_tokens, 16, "Output tokens per request at most");
ABSL_FLAG(int, n, 1,
          "Choices per request (parallel sampling): the prompt is prefilled once and forked; "
          "choice i samples with seed + i when --seed is set; at most --max-num-seqs");
ABSL_FLAG(double, temperature, 0.0, "Sampling temperature; 0 = greedy");
ABSL_FLAG(double, top_p, 1.0, "Nucleus sampling mass in (0, 1]");
ABSL_FLAG(int, top_k, -1, "Top-k sampling; -1 = off");
ABSL_FLAG(double, min_p, 0.0, "Min-p sampling threshold in [0, 1]");
ABSL_FLAG(int64_t, seed, -1, "Sampling seed for every request; -1 = random per request");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating past the end-of-sequence token");
ABSL_FLAG(std::vector<std::string>, stop, {},
          "Stop strings (comma-separated): generation ends before the first one in the text");
ABSL_FLAG(bool, json, false,
          "Print one JSON object per request, in input order: prompt_token_ids, "
          "output_token_ids, output_text, finish_reason, usage (of choice 0), and with n > 1 "
          "\"choices\": [{index, output_token_ids, output_text, finish_reason, usage}, ...]");

namespace tessera {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(absl::string_view text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, absl::ByAnyChar(" ,"), absl::SkipEmpty())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-ids: '", part, "' is not a token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

SamplingParams DefaultParams() {
  SamplingParams p;
  p.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  p.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  p.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  p.top_k = absl::GetFlag(FLAGS_top_k);
  p.min_p = static_cast<float>(absl::GetFlag(FLAGS_min_p));
  if (absl::GetFlag(FLAGS_seed) >= 0) p.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  p.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  p.stop = absl::GetFlag(FLAGS_stop);
  p.n = absl::GetFlag(FLAGS_n);
  return p;
}

// One JSONL line -> a request (fields it leaves out take the flag values).
absl::StatusOr<EngineRequest> ParseRequestLine(const std::string& line, int line_no,
                                               const Tokenizer& tokenizer) {
  const std::string where = absl::StrCat("--prompts line ", line_no, ": ");
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(where + "not a JSON object");
  }
  EngineRequest r;
  r.params = DefaultParams();
  try {
    if (j.contains("prompt_token_ids")) {
      r.prompt_token_ids = j.at("prompt_token_ids").get<std::vector<int32_t>>();
    } else if (j.contains("prompt")) {
      ASSIGN_OR_RETURN(r.prompt_token_ids,
                       tokenizer.Encode(j.at("prompt").get<std::string>(), /*add_bos=*/true));
    } else {
      return absl::InvalidArgumentError(where + "needs \"prompt_token_ids\" or \"prompt\"");
    }
    if (j.contains("max_tokens")) r.params.max_tokens = j.at("max_tokens").get<int>();
    if (j.contains("temperature")) r.params.temperature = j.at("temperature").get<float>();
    if (j.contains("top_p")) r.params.top_p = j.at("top_p").get<float>();
    if (j.contains("top_k")) r.params.top_k = j.at("top_k").get<int>();
    if (j.contains("min_p")) r.params.min_p = j.at("min_p").get<float>();
    if (j.contains("seed")) r.params.seed = j.at("seed").get<uint64_t>();
    if (j.contains("ignore_eos")) r.params.ignore_eos = j.at("ignore_eos").get<bool>();
    if (j.contains("stop_token_ids")) {
      r.params.stop_token_ids = j.at("stop_token_ids").get<std::vector<int32_t>>();
    }
    if (j.contains("logprobs")) r.params.logprobs = j.at("logprobs").get<int>();
    if (j.contains("stop")) r.params.stop = j.at("stop").get<std::vector<std::string>>();
    if (j.contains("repetition_penalty")) {
      r.params.repetition_penalty = j.at("repetition_penalty").get<float>();
    }
    if (j.contains("presence_penalty"))
      r.params.presence_penalty = j.at("presence_penalty").get<float>();
    if (j.contains("frequency_penalty")) {
      r.params.frequency_penalty = j.at("frequency_penalty").get<float>();
    }
    if (j.contains("priority")) r.priority = j.at("priority").get<int>();
    if (j.contains("n")) r.params.n = j.at("n").get<int>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, e.what()));
  }
  return r;
}

absl::StatusOr<std::vector<EngineRequest>> ReadRequests(const Tokenizer& tokenizer) {
  std::vector<EngineRequest> requests;
  const std::string text = absl::GetFlag(FLAGS_prompt);
  const std::string ids = absl::GetFlag(FLAGS_prompt_ids);
  const std::string file = absl::GetFlag(FLAGS_prompts);
  if (!text.empty() + !ids.empty() + !file.empty() != 1) {
    return absl::InvalidArgumentError("give exactly one of --prompt, --prompt-ids and --prompts");
  }
  if (!text.empty() || !ids.empty()) {
    EngineRequest r;
    r.params = DefaultParams();
    if (!text.empty()) {
      ASSIGN_OR_RETURN(r.prompt_token_ids, tokenizer.Encode(text, /*add_bos=*/true));
    } else {
      ASSIGN_OR_RETURN(r.prompt_token_ids, ParseIds(ids));
    }
    requests.push_back(std::move(r));
  } else {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("--prompts: cannot open ", file));
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      ASSIGN_OR_RETURN(EngineRequest r, ParseRequestLine(line, line_no, tokenizer));
      requests.push_back(std::move(r));
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].request_id = absl::StrCat("req-", i);
    requests[i].return_text = true;
  }
  return requests;
}

struct Choice {
  std::vector<int32_t> output;
  std::vector<SampleResult> logprobs;
  std::string text;  // from the engine's output processor (stop strings applied)
  RequestOutput last;
};

struct Result {
  std::vector<int32_t> prompt;
  std::vector<Choice> choices;  // params.n of them
};

// One choice's fields of the --json object.
void ChoiceToJson(const Choice& c, nlohmann::json& j) {
  j["output_token_ids"] = c.output;
  j["output_text"] = c.text;
  j["finish_reason"] = std::string(FinishReasonName(c.last.finish_reason));
  j["usage"] = {{"prompt_tokens", c.last.prompt_tokens},
                {"completion_tokens", c.last.completion_tokens},
                {"cached_prompt_tokens", c.last.cached_prompt_tokens}};
  if (!c.logprobs.empty()) {
    nlohmann::json lps = nlohmann::json::array();
    for (const SampleResult& s : c.logprobs) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, lp] : s.top_logprobs)
        top.push_back({{"token_id", id}, {"logprob", lp}});
      lps.push_back({{"token_id", s.token}, {"logprob", s.logprob}, {"top", top}});
    }
    j["logprobs"] = lps;
  }
}

absl::Status RunLeader(Replica& replica) {
  Engine& engine = *replica.engine;
  ASSIGN_OR_RETURN(std::vector<EngineRequest> requests, ReadRequests(replica.text->tokenizer()));
  std::vector<Result> results(requests.size());
  absl::flat_hash_map<std::string, size_t> index;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < requests.size(); ++i) {
    results[i].prompt = requests[i].prompt_token_ids;
    results[i].choices.resize(std::max(1, requests[i].params.n));
    index[requests[i].request_id] = i;
    absl::Status s = engine.AddRequest(std::move(requests[i]));
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("request ", i, ": ", s.message()));
  }
  while (engine.HasUnfinished()) {
    ASSIGN_OR_RETURN(std::vector<RequestOutput> outputs, engine.Step());
    for (RequestOutput& o : outputs) {
      Choice& r = results[index.at(o.request_id)].choices.at(o.index);
      r.output.insert(r.output.end(), o.new_tokens.begin(), o.new_tokens.end());
      for (SampleResult& lp : o.logprobs) r.logprobs.push_back(std::move(lp));
      r.text += o.text;
      if (o.finished()) r.last = std::move(o);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  int64_t prompt_tokens = 0, output_tokens = 0;
  const bool json = absl::GetFlag(FLAGS_json);
  for (const Result& r : results) {
    prompt_tokens += static_cast<int64_t>(r.prompt.size());
    for (const Choice& c : r.choices) output_tokens += static_cast<int64_t>(c.output.size());
    const bool several = r.choices.size() > 1;
    if (json) {
      // Choice 0 at the top level, as with n = 1; all of them in "choices".
      nlohmann::json j;
      j["prompt_token_ids"] = r.prompt;
      ChoiceToJson(r.choices[0], j);
      if (several) {
        nlohmann::json choices = nlohmann::json::array();
        for (size_t i = 0; i < r.choices.size(); ++i) {
          nlohmann::json c;
          c["index"] = i;
          ChoiceToJson(r.choices[i], c);
          choices.push_back(std::move(c));
        }
        j["choices"] = std::move(choices);
      }
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else if (several) {
      for (size_t i = 0; i < r.choices.size(); ++i) {
        std::cout << "[" << i << "] " << r.choices[i].text << "\n";
      }
    } else {
      std::cout << r.choices[0].text << "\n";
    }
  }
  std::cout.flush();
  const EngineStats& st = engine.stats();
  spdlog::info(
      "{} requests, {} prompt tokens, {} output tokens in {:.3f} s: {:.1f} output tokens/s, "
      "{} steps; {} prompt tokens computed, {} decode steps of {:.2f} sequences on average, "
      "{} forked choices, {} KV blocks copied",
      results.size(), prompt_tokens, output_tokens, seconds,
      seconds > 0 ? output_tokens / seconds : 0.0, st.steps, st.prompt_tokens_computed,
      st.decode_steps,
      st.decode_steps > 0 ? static_cast<double>(st.decode_seqs) / st.decode_steps : 0.0, st.forks,
      st.block_copies);
  return absl::OkStatus();
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::ParseCommandLine(
      argc, argv,
      "offline batch generation.\n"
      "  tessera-generate --model DIR (--prompt TEXT | --prompt-ids \"1 2 3\" | --prompts "
      "FILE.jsonl) [--max-tokens N] [--temperature T] [--n N] [--ignore-eos] [--json]\n"
      "  mpirun -np N tessera-generate ...   (tensor parallelism over N ranks)");
  auto mpi = tessera::MpiSession::Init(&argc, &argv);
  if (!mpi.ok()) {
    std::fprintf(stderr, "tessera-generate: %s\n", std::string(mpi.status().message()).c_str());
    return 1;
  }
  const int rank = (*mpi)->world_rank();
  if (auto s =
          tessera::InitLogging(absl::GetFlag(FLAGS_log_level), absl::StrCat("generate r", rank));
      !s.ok()) {
    std::fprintf(stderr, "tessera-generate: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<tessera::Replica>> replica = tessera::BuildReplicaFromFlags(**mpi);
  if (!replica.ok()) {
    spdlog::error("{}", replica.status().message());
    if ((*mpi)->world_size() > 1) tessera::MpiSession::Abort(2);
    return 2;
  }
  if (rank == 0) {
    absl::Status status = tessera::RunLeader(**replica);
    // Followers leave their loop either way; a failed broadcast leaves them
    // unreachable, so then the whole job is ended.
    absl::Status shutdown = (*replica)->engine->Shutdown();
    if (!status.ok()) spdlog::error("{}", status.message());
    if (!shutdown.ok()) {
      spdlog::error("{}", shutdown.message());
      tessera::MpiSession::Abort(1);
    }
    return status.ok() ? 0 : 1;
  }
  absl::Status status = tessera::RunFollower(*(*replica)->executor, *(*replica)->comm);
  if (!status.ok()) {
    spdlog::error("{}", status.message());
    tessera::MpiSession::Abort(1);
  }
  return 0;
}
