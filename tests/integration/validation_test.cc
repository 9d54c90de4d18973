// Admission validation of Worker.Generate over the wire (each bad input gets
// its status code and a message naming the field), the waiting limit, and a
// fuzz of 1,000 malformed or random requests (some cancelled at once, some
// with tiny deadlines) after which the worker still serves the greedy
// reference and holds no sequences or KV blocks.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using tessera::v1::GenerateRequest;

constexpr int kMaxModelLen = 128;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class ValidationTest : public SharedStoriesClusterTest<ValidationTest> {
 public:
  static WorkerClusterOptions ClusterOptions() {
    return {.ranks = 1,
            .worker_args = StoriesWorkerArgs({"--max-model-len", std::to_string(kMaxModelLen)})};
  }
};

struct BadCase {
  std::string name;
  GenerateRequest request;
  grpc::StatusCode code;
  std::vector<std::string> any_of;  // the message names one of these (any case)
};

std::vector<BadCase> BadCases() {
  const std::vector<int32_t> ok_prompt = {1, 300, 301};
  auto greedy = [&](int max_tokens = 8) { return GreedyRequest(ok_prompt, max_tokens); };
  std::vector<BadCase> cases;
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  {
    GenerateRequest r = greedy();
    r.mutable_token_ids()->clear_ids();
    cases.push_back({"empty token_ids", r, kInvalid, {"prompt", "token_ids"}});
  }
  {
    GenerateRequest r = greedy();
    r.clear_prompt();
    cases.push_back({"no prompt", r, kInvalid, {"prompt"}});
  }
  {
    GenerateRequest r = greedy();
    r.set_text("");
    cases.push_back({"empty text", r, kInvalid, {"prompt", "text"}});
  }
  {
    GenerateRequest r = greedy();
    r.mutable_token_ids()->add_ids(512);  // vocab_size is 512
    cases.push_back({"token id = vocab_size", r, kInvalid, {"token"}});
  }
  {
    GenerateRequest r = greedy();
    r.mutable_token_ids()->add_ids(-1);
    cases.push_back({"negative token id", r, kInvalid, {"token"}});
  }
  {
    GenerateRequest r = GreedyRequest(std::vector<int32_t>(kMaxModelLen + 1, 300), 1);
    cases.push_back({"prompt longer than max_model_len", r, kInvalid, {"max_model_len", "prompt"}});
  }
  {
    GenerateRequest r = GreedyRequest(std::vector<int32_t>(100, 300), 100);
    cases.push_back(
        {"prompt + max_tokens beyond max_model_len", r, kInvalid, {"max_model_len", "max_tokens"}});
  }
  for (int v : {0, -3}) {
    GenerateRequest r = greedy(v);
    cases.push_back({"max_tokens " + std::to_string(v), r, kInvalid, {"max_tokens"}});
  }
  for (float v : {-0.5f, std::numeric_limits<float>::quiet_NaN()}) {
    GenerateRequest r = greedy();
    r.mutable_sampling()->set_temperature(v);
    cases.push_back({"temperature " + std::to_string(v), r, kInvalid, {"temperature"}});
  }
  for (float v : {0.0f, -0.1f, 1.5f}) {
    GenerateRequest r = greedy();
    r.mutable_sampling()->set_top_p(v);
    cases.push_back({"top_p " + std::to_string(v), r, kInvalid, {"top_p"}});
  }
  {
    GenerateRequest r = greedy();
    r.mutable_sampling()->set_top_k(-2);
    cases.push_back({"top_k -2", r, kInvalid, {"top_k"}});
  }
  for (float v : {-0.1f, 1.1f}) {
    GenerateRequest r = greedy();
    r.mutable_sampling()->set_min_p(v);
    cases.push_back({"min_p " + std::to_string(v), r, kInvalid, {"min_p"}});
  }
  {
    GenerateRequest r = greedy();
    for (int i = 0; i < 100; ++i) r.mutable_sampling()->add_stop("stop" + std::to_string(i));
    cases.push_back({"100 stop strings", r, kInvalid, {"stop"}});
  }
  {
    GenerateRequest r = greedy();
    r.set_model("no-such-model");
    cases.push_back({"unknown model", r, grpc::StatusCode::NOT_FOUND, {"model"}});
  }
  return cases;
}

TEST_F(ValidationTest, BadInputsGetTheirStatus) {
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    const StreamResult r =
        RunGenerate(cluster_->stub(), c.request, WithDeadline(milliseconds(10000)));
    EXPECT_EQ(r.status.error_code(), c.code) << Describe(r.status);
    EXPECT_TRUE(r.tokens.empty());
    bool named = false;
    for (const std::string& word : c.any_of) {
      named = named || Lower(r.status.error_message()).find(word) != std::string::npos;
    }
    EXPECT_TRUE(named) << "the message \"" << r.status.error_message()
                       << "\" names none of the expected fields";
  }
  // The worker is unharmed.
  const StreamResult ok = RunGenerate(cluster_->stub(), GreedyRequest(refs_[1].prompt, 16));
  ExpectCompleteStream(ok, refs_[1].prompt.size(), 16, "valid request after the bad ones");
  ExpectMatchesReference(ok,
                         {refs_[1].prompt, refs_[1].generated, std::min(16, refs_[1].safe_prefix)},
                         "valid request after the bad ones");
}

// A random request: mostly plausible, often invalid in one or more fields.
GenerateRequest RandomRequest(std::mt19937_64& rng, int index) {
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto real = [&](double lo, double hi) {
    return static_cast<float>(std::uniform_real_distribution<double>(lo, hi)(rng));
  };
  GenerateRequest r;
  if (chance(0.5)) r.set_request_id("fuzz-" + std::to_string(index));
  if (chance(0.03)) r.set_model(chance(0.5) ? "stories260K-nope" : std::string(uniform(1, 8), 'x'));
  if (chance(0.25)) {
    std::string text;
    const int n = uniform(0, 60);
    // Valid UTF-8 (proto3 strings must be; gRPC drops invalid ones before the
    // service sees them): ASCII with some multi-byte characters.
    static const char* const kPieces[] = {"\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x99\x82", "\n",
                                          "\t"};
    for (int i = 0; i < n; ++i) {
      if (chance(0.15)) {
        text += kPieces[uniform(0, 4)];
      } else {
        text.push_back(static_cast<char>(uniform(32, 126)));
      }
    }
    r.set_text(text);
  } else if (!chance(0.03)) {
    auto* ids = r.mutable_token_ids();
    const int n = chance(0.1) ? uniform(0, kMaxModelLen + 40) : uniform(0, 24);
    for (int i = 0; i < n; ++i) {
      ids->add_ids(chance(0.02) ? (chance(0.5) ? uniform(512, 1 << 30) : uniform(-1000, -1))
                                : uniform(0, 511));
    }
  }
  auto* s = r.mutable_sampling();
  if (!chance(0.1)) s->set_max_tokens(chance(0.05) ? uniform(-5, 0) : uniform(1, 16));
  if (chance(0.8)) s->set_temperature(chance(0.05) ? real(-1, 0) : real(0, 2));
  if (chance(0.02)) s->set_temperature(std::numeric_limits<float>::infinity());
  if (chance(0.4)) s->set_top_p(real(-0.1, 1.1));
  if (chance(0.4)) s->set_top_k(uniform(-3, 600));
  if (chance(0.4)) s->set_min_p(real(-0.1, 1.1));
  if (chance(0.5)) s->set_seed(rng());
  const int n_stop = chance(0.1) ? uniform(0, 24) : 0;
  for (int i = 0; i < n_stop; ++i) s->add_stop(std::string(uniform(0, 3), 'a' + uniform(0, 25)));
  const int n_stop_ids = chance(0.1) ? uniform(0, 20) : 0;
  for (int i = 0; i < n_stop_ids; ++i) s->add_stop_token_ids(uniform(-2, 600));
  s->set_ignore_eos(chance(0.7));
  if (chance(0.2)) s->set_repetition_penalty(real(-0.5, 3));
  if (chance(0.2)) s->set_presence_penalty(real(-3, 3));
  if (chance(0.2)) s->set_frequency_penalty(real(-3, 3));
  if (chance(0.15)) s->set_logprobs(uniform(-2, 25));
  r.set_priority(uniform(-5, 5));
  r.set_return_text(chance(0.3));
  return r;
}

TEST_F(ValidationTest, FuzzLeavesTheWorkerServingAndClean) {
  const auto idle = GetLoad(cluster_->stub());
  ASSERT_TRUE(idle.has_value());

  constexpr int kRequests = 1000;
  constexpr int kThreads = 16;
  std::atomic<int> next{0};
  std::mutex mu;
  std::map<int, int> codes;             // status code -> count
  std::vector<std::string> violations;  // broken invariants, with the request
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1234 + t);
      for (int i = next.fetch_add(1); i < kRequests; i = next.fetch_add(1)) {
        const GenerateRequest request = RandomRequest(rng, i);
        StreamOptions options;
        options.deadline = milliseconds(30000);
        const int action = std::uniform_int_distribution<int>(0, 9)(rng);
        if (action == 0) options.cancel_after_tokens = 0;  // cancelled at once
        if (action == 1) options.cancel_after_tokens = 1 + i % 3;
        if (action == 2) options.deadline = milliseconds(1 + i % 20);
        const StreamResult r = RunGenerate(cluster_->stub(), request, options);
        std::string problem;
        switch (r.status.error_code()) {
          case grpc::StatusCode::OK:
            if (!r.finished)
              problem = "OK without a final message";
            else if (r.messages_after_finish != 0)
              problem = "messages after the final one";
            else if (r.final_message.usage().completion_tokens() !=
                     static_cast<int>(r.tokens.size()))
              problem = "usage.completion_tokens disagrees with the tokens received";
            else if (request.sampling().has_max_tokens() &&
                     static_cast<int>(r.tokens.size()) > request.sampling().max_tokens())
              problem = "more tokens than max_tokens";
            break;
          case grpc::StatusCode::INVALID_ARGUMENT:
          case grpc::StatusCode::NOT_FOUND:
          case grpc::StatusCode::RESOURCE_EXHAUSTED:
            if (!r.tokens.empty()) problem = "tokens before an error status";
            break;
          case grpc::StatusCode::CANCELLED:
            if (!r.cancelled) problem = "CANCELLED although the client did not cancel";
            break;
          case grpc::StatusCode::DEADLINE_EXCEEDED:
            break;
          default:
            problem = "unexpected status";
            break;
        }
        std::lock_guard<std::mutex> lock(mu);
        ++codes[r.status.error_code()];
        if (!problem.empty() && violations.size() < 10) {
          violations.push_back(problem + " (" + Describe(r.status) + ") for " +
                               request.ShortDebugString().substr(0, 400));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::string summary;
  for (const auto& [code, count] : codes) {
    summary += " code " + std::to_string(code) + ": " + std::to_string(count) + ";";
  }
  std::printf("fuzz: %d requests, status codes:%s\n", kRequests, summary.c_str());
  SCOPED_TRACE("status codes:" + summary);
  for (const std::string& v : violations) ADD_FAILURE() << v;
  EXPECT_GT(codes[grpc::StatusCode::OK], 100) << "too few valid requests to mean anything";
  EXPECT_GT(codes[grpc::StatusCode::INVALID_ARGUMENT], 50);

  ASSERT_EQ(CheckHealth(*cluster_->channel(), milliseconds(10000)), HealthState::kServing);
  for (size_t i = 0; i < refs_.size(); ++i) {
    const StreamResult r = RunGenerate(cluster_->stub(), GreedyRequest(refs_[i].prompt, 64));
    ExpectCompleteStream(r, refs_[i].prompt.size(), 64, "reference " + std::to_string(i));
    ExpectMatchesReference(r, refs_[i], "reference " + std::to_string(i));
  }
  std::optional<tessera::v1::LoadReport> load;
  EXPECT_TRUE(PollUntil(milliseconds(20000),
                        [&] {
                          load = GetLoad(cluster_->stub());
                          return load && load->running() == 0 && load->waiting() == 0 &&
                                 load->kv_blocks_used() == idle->kv_blocks_used();
                        }))
      << "leaked: " << (load ? load->ShortDebugString() : "GetLoad failed")
      << " (idle: " << idle->ShortDebugString() << ")";
}

// Past --max-waiting, new requests get RESOURCE_EXHAUSTED. One sequence may
// run (--max-num-seqs 1) and one may wait (--max-waiting 1).
TEST(WaitingLimitTest, PastTheLimitIsResourceExhausted) {
  std::string error;
  auto cluster = WorkerCluster::Start(
      {.ranks = 1,
       .worker_args = {"--dummy", "tiny", "--threads", "1", "--num-kv-blocks", "512",
                       "--max-num-seqs", "1", "--max-waiting", "1", "--log-level", "warn"}},
      &error);
  ASSERT_NE(cluster, nullptr) << error;
  std::mutex mu;
  std::vector<grpc::ClientContext*> contexts;
  std::atomic<bool> first_token{false};
  auto start_long = [&](StreamResult* out) {
    return std::thread([&, out] {
      StreamOptions options;
      options.deadline = milliseconds(60000);
      options.on_start = [&](grpc::ClientContext* ctx) {
        std::lock_guard<std::mutex> lock(mu);
        contexts.push_back(ctx);
      };
      options.on_end = [&](grpc::ClientContext* ctx) {
        std::lock_guard<std::mutex> lock(mu);
        contexts.erase(std::find(contexts.begin(), contexts.end(), ctx));
      };
      options.on_message = [&](const tessera::v1::GenerateResponse&) { first_token = true; };
      *out = RunGenerate(cluster->stub(), GreedyRequest({1, 300, 301}, 1900), options);
    });
  };
  StreamResult running, waiting;
  std::thread a = start_long(&running);
  ASSERT_TRUE(PollUntil(milliseconds(20000), [&] { return first_token.load(); }));
  std::thread b = start_long(&waiting);
  std::optional<tessera::v1::LoadReport> load;
  const bool one_waiting = PollUntil(milliseconds(10000), [&] {
    load = GetLoad(cluster->stub());
    return load && load->waiting() >= 1;
  });
  const StreamResult rejected =
      RunGenerate(cluster->stub(), GreedyRequest({1, 302}, 4), WithDeadline(milliseconds(10000)));
  {
    std::lock_guard<std::mutex> lock(mu);
    for (grpc::ClientContext* ctx : contexts) ctx->TryCancel();
  }
  a.join();
  b.join();
  ASSERT_TRUE(one_waiting) << "last load: " << (load ? load->ShortDebugString() : "none");
  EXPECT_EQ(rejected.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << Describe(rejected.status) << "; load before: " << load->ShortDebugString();
  EXPECT_EQ(running.status.error_code(), grpc::StatusCode::CANCELLED) << Describe(running.status);
}

}  // namespace
}  // namespace tessera::testing
