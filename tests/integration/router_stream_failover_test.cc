// Exact mid-stream failover (router/continuation.h) end to end: stories260K
// replicas behind tessera-router; greedy and seeded-sampling requests (one
// variant with stop strings and frequency / presence / repetition
// penalties, one with n = 2 choices) stream through the router; the replica
// serving one of them is
// killed with SIGKILL (mpirun and its ranks) mid-stream. Every stream
// completes, and its tokens, text, finish reason and usage (each choice's)
// equal those of an uninterrupted run of the same request -- with one-rank
// replicas and with TP=2 replicas (two ranks under mpirun each). The workers
// run --batch-invariant: a continuation, like any request, then gets the
// same logits whatever else shares its steps.
#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
namespace v1 = tessera::v1;

constexpr int kPromptLen = 24;
constexpr int kMaxTokens = 400;  // + the prompt within stories260K's 512
constexpr int kCopies = 2;       // concurrent streams of each request
constexpr int kKillAfterTokens = 8;

// One choice of a stream as its client saw it.
struct ChoiceSeen {
  std::vector<int32_t> tokens;
  std::string text;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage;
  int after_final = 0;  // messages of this choice after its final one (must be 0)
};

// One stream as its client saw it.
struct Seen {
  grpc::Status status;
  std::vector<ChoiceSeen> choices;   // by GenerateResponse.index
  std::vector<std::string> workers;  // worker_id of each message
  size_t tokens = 0;                 // all choices
  int finals = 0;
  // Whether the stream moved to another worker part way (the failover's seam).
  bool moved() const {
    for (size_t i = 1; i < workers.size(); ++i) {
      if (workers[i] != workers[0]) return true;
    }
    return false;
  }
};

// Progress of the streams, for choosing the victim.
class Progress {
 public:
  void Note(int stream, const std::string& worker, size_t tokens, bool done) {
    std::lock_guard<std::mutex> lock(mu_);
    state_[stream] = {worker, done ? 0 : tokens};
  }
  // A worker serving an unfinished stream that has at least `n` tokens,
  // among the streams `pick` accepts.
  std::string Streaming(size_t n, const std::function<bool(int)>& pick) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [stream, s] : state_) {
      if (s.second >= n && pick(stream)) return s.first;
    }
    return "";
  }

 private:
  mutable std::mutex mu_;
  std::map<int, std::pair<std::string, size_t>> state_;
};

Seen Stream(v1::Llm::Stub& llm, const v1::GenerateRequest& request, const CallOptions& call,
            int index = -1, Progress* progress = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + call.deadline);
  if (!call.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + call.api_key);
  auto reader = llm.Generate(&ctx, request);
  const int n = std::max(1, request.sampling().n());
  Seen s;
  s.choices.resize(static_cast<size_t>(n));
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
    s.workers.push_back(m.worker_id());
    if (m.index() < 0 || m.index() >= n) {
      ADD_FAILURE() << "a message with index " << m.index() << " for n = " << n;
      continue;
    }
    ChoiceSeen& c = s.choices[m.index()];
    if (c.finish != v1::FINISH_REASON_UNSPECIFIED) ++c.after_final;
    c.tokens.insert(c.tokens.end(), m.token_ids().begin(), m.token_ids().end());
    c.text += m.text();
    s.tokens += m.token_ids_size();
    if (m.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      c.finish = m.finish_reason();
      c.usage = m.usage();
      ++s.finals;
    }
    if (progress != nullptr) progress->Note(index, m.worker_id(), s.tokens, s.finals >= n);
  }
  s.status = reader->Finish();
  if (progress != nullptr) progress->Note(index, "", 0, true);
  return s;
}

v1::GenerateRequest Base(int index) {
  v1::GenerateRequest r;
  for (int32_t id : VariedPrompt(17, index, kPromptLen)) r.mutable_token_ids()->add_ids(id);
  r.mutable_sampling()->set_max_tokens(kMaxTokens);
  r.mutable_sampling()->set_ignore_eos(true);
  r.set_return_text(true);
  return r;
}

struct Case {
  std::string name;
  v1::GenerateRequest request;
  Seen reference;  // uninterrupted
};

// The requests, each with its uninterrupted run (made before any kill).
std::vector<Case> Cases(RouterCluster& cluster) {
  const CallOptions call = cluster.ClientCallOptions();
  std::vector<Case> cases;
  Case greedy{"greedy", Base(0), {}};
  greedy.request.mutable_sampling()->set_temperature(0.0f);
  cases.push_back(greedy);
  Case seeded{"seeded sampling", Base(1), {}};
  seeded.request.mutable_sampling()->set_temperature(1.0f);
  seeded.request.mutable_sampling()->set_seed(4242);
  seeded.request.mutable_sampling()->set_logprobs(1);
  cases.push_back(seeded);
  Case penalised{"seeded sampling, stop strings and penalties", Base(2), {}};
  v1::SamplingParams* p = penalised.request.mutable_sampling();
  p->set_temperature(0.9f);
  p->set_seed(77);
  p->set_frequency_penalty(0.5f);
  p->set_presence_penalty(0.3f);
  p->set_repetition_penalty(1.2f);
  // A stop string that first occurs late in the text: the stream runs long
  // before it stops there.
  const Seen free_run = Stream(cluster.llm(), penalised.request, call);
  EXPECT_TRUE(free_run.status.ok()) << free_run.status.error_message();
  const std::string& free_text = free_run.choices[0].text;
  for (size_t pos = free_text.size() * 3 / 4; pos + 5 <= free_text.size(); ++pos) {
    const std::string candidate = free_text.substr(pos, 5);
    if (free_text.find(candidate) == pos) {
      p->add_stop(candidate);
      break;
    }
  }
  EXPECT_EQ(p->stop_size(), 1) << "no unique late 5-byte string in: " << free_text;
  p->add_stop("never-in-these-stories");
  cases.push_back(penalised);
  // Two choices (choice i samples with seed + i), each continued from the
  // point its own stream had reached.
  Case parallel{"parallel sampling (n = 2), seeded", Base(3), {}};
  parallel.request.mutable_sampling()->set_temperature(1.0f);
  parallel.request.mutable_sampling()->set_seed(9001);
  parallel.request.mutable_sampling()->set_n(2);
  cases.push_back(parallel);
  for (Case& c : cases) {
    c.reference = Stream(cluster.llm(), c.request, call);
    EXPECT_TRUE(c.reference.status.ok()) << c.name << ": " << c.reference.status.error_message();
  }
  return cases;
}

void KillMidStreamAndCompare(int ranks) {
  RouterClusterOptions options;
  options.replicas = 2;
  options.ranks = ranks;
  options.worker_args = StoriesWorkerArgs({"--batch-invariant"});
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const std::vector<Case> cases = Cases(*cluster);
  ASSERT_FALSE(::testing::Test::HasFailure());
  EXPECT_EQ(cases[2].reference.choices[0].finish, v1::FINISH_REASON_STOP);
  EXPECT_NE(cases[3].reference.choices[0].tokens, cases[3].reference.choices[1].tokens);

  Progress progress;
  std::vector<Seen> seen(cases.size() * kCopies);
  std::vector<std::thread> clients;
  const CallOptions call = cluster->ClientCallOptions(std::chrono::seconds(300));
  for (size_t i = 0; i < seen.size(); ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest r = cases[i % cases.size()].request;
      r.set_request_id("stream-" + std::to_string(i));
      seen[i] = Stream(cluster->llm(), r, call, static_cast<int>(i), &progress);
    });
  }
  std::string victim;
  const bool streaming = PollUntil(milliseconds(60000), [&] {
    // The victim serves an n = 2 stream (the last case), so that the kill
    // cuts one; other streams on that worker are cut with it.
    victim = progress.Streaming(kKillAfterTokens, [&](int stream) {
      return static_cast<size_t>(stream) % cases.size() == cases.size() - 1;
    });
    return !victim.empty();
  });
  if (streaming) {
    for (int i = 0; i < cluster->replicas(); ++i) {
      if (cluster->worker_id(i) == victim) cluster->KillReplica(i);
    }
  }
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(streaming) << "no stream reached " << kKillAfterTokens << " tokens";

  int moved = 0;
  int parallel_moved = 0;  // of the n = 2 case
  for (size_t i = 0; i < seen.size(); ++i) {
    const Case& c = cases[i % cases.size()];
    const Seen& s = seen[i];
    const std::string what = "stream " + std::to_string(i) + " (" + c.name + ")";
    ASSERT_TRUE(s.status.ok()) << what << ": " << s.status.error_message();
    ASSERT_EQ(s.choices.size(), c.reference.choices.size()) << what;
    for (size_t k = 0; k < s.choices.size(); ++k) {
      const std::string choice = what + ", choice " + std::to_string(k);
      const ChoiceSeen& got = s.choices[k];
      const ChoiceSeen& want = c.reference.choices[k];
      EXPECT_EQ(got.tokens, want.tokens) << choice << ": tokens differ from the uninterrupted run";
      EXPECT_EQ(got.text, want.text) << choice << ": text differs from the uninterrupted run";
      EXPECT_EQ(got.finish, want.finish) << choice;
      EXPECT_EQ(got.usage.prompt_tokens(), kPromptLen) << choice;
      EXPECT_EQ(got.usage.completion_tokens(), want.usage.completion_tokens()) << choice;
      EXPECT_EQ(got.after_final, 0) << choice;
    }
    if (s.moved()) {
      ++moved;
      if (s.choices.size() > 1) ++parallel_moved;
      EXPECT_EQ(s.workers.front(), victim) << what << " moved off a worker that was not killed";
    }
  }
  std::printf(
      "TP=%d: %zu streams, %d continued on another worker (%d of them n = 2) after %s was "
      "killed\n",
      ranks, seen.size(), moved, parallel_moved, victim.c_str());
  // The kill landed mid-stream: at least the stream that triggered it moved.
  EXPECT_GE(parallel_moved, 1) << "no n = 2 stream was cut by the kill";
  cluster->PrintLogsIfTestFailed();
}

TEST(RouterStreamFailoverTest, KilledWorkerMidStreamTp1) {
  TESSERA_REQUIRE_STORIES();
  KillMidStreamAndCompare(1);
}

TEST(RouterStreamFailoverTest, KilledWorkerMidStreamTp2) {
  TESSERA_REQUIRE_STORIES();
  KillMidStreamAndCompare(2);
}

}  // namespace
}  // namespace tessera::testing
