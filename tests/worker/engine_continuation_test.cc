// A continued request (worker/engine/continuation.h) through the whole
// engine on the CPU: for every cut point k of an uninterrupted run, the
// request re-issued with its first k output tokens as the continuation
// yields exactly the rest of that run -- the same tokens (greedy, seeded
// sampling, penalties), the same logprobs, the rest of the text with nothing
// repeated or missing (text held back for a stop string or a split
// character comes out after the cut), the same stop and finish reason, and
// usage that counts the whole output. With n > 1 each unfinished choice
// goes on from its own cut (the finished ones are not run again) and gives
// exactly the rest of that choice. stories260K (../shared) gives text and
// stop strings; the tiny dummy model checks the tokens alone.
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/stories.h"
#include "worker/engine/continuation.h"
#include "worker/engine/engine.h"
#include "worker/replica.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

// `batch_invariant`: the CPU matmul gives a row the same bits in any batch
// (--batch-invariant), as a continuation's exactness needs when its choices
// run in other batches than the uninterrupted request's.
std::unique_ptr<Replica> MakeReplica(bool stories, bool prefix_caching,
                                     bool batch_invariant = false) {
  ReplicaOptions o;
  o.batch_invariant = batch_invariant;
  if (stories) {
    o.model_dir = testing::StoriesDir();
  } else {
    o.dummy_preset = "tiny";
    o.dummy_seed = 3;
  }
  o.cache.block_size = 4;
  o.cache.num_blocks = 512;
  o.cache.enable_prefix_caching = prefix_caching;
  o.sched.max_num_batched_tokens = 256;
  o.sched.max_num_seqs = 8;
  o.sched.max_model_len = 256;
  o.threads = 1;
  auto r = BuildReplica(o, MakeSingleProcessCommunicator());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

// One request's outputs as a client sees them.
struct Outputs {
  std::vector<int32_t> tokens;
  std::vector<std::string> texts;  // per output (one token each, or the final flush)
  std::vector<int> tokens_before;  // tokens received before each output
  std::vector<SampleResult> logprobs;
  RequestOutput last;
  int finals = 0;
  std::string text() const {
    std::string t;
    for (const std::string& s : texts) t += s;
    return t;
  }
  // The text a client had once it had received `k` tokens (and everything of
  // the outputs carrying them).
  std::string TextAfter(int k) const {
    std::string t;
    for (size_t i = 0; i < texts.size() && tokens_before[i] < k; ++i) t += texts[i];
    return t;
  }
};

// Runs `request` alone to its end; the outputs of each choice (index 0 ..
// params.n - 1; a choice that gave none has finals == 0). Every output must
// carry the request's id.
std::vector<Outputs> RunChoices(Engine& engine, EngineRequest request) {
  const std::string id = request.request_id;
  const int n = request.params.n;
  absl::Status added = engine.AddRequest(std::move(request));
  EXPECT_TRUE(added.ok()) << added;
  std::vector<Outputs> runs(static_cast<size_t>(n));
  for (int guard = 0; engine.HasUnfinished() && guard < 10000; ++guard) {
    auto outputs = engine.Step();
    EXPECT_TRUE(outputs.ok()) << outputs.status();
    if (!outputs.ok()) break;
    for (RequestOutput& o : *outputs) {
      EXPECT_EQ(o.request_id, id);
      EXPECT_TRUE(o.index >= 0 && o.index < n) << o.index;
      if (o.request_id != id || o.index < 0 || o.index >= n) continue;
      Outputs& run = runs[o.index];
      run.tokens_before.push_back(static_cast<int>(run.tokens.size()));
      run.tokens.insert(run.tokens.end(), o.new_tokens.begin(), o.new_tokens.end());
      run.texts.push_back(o.text);
      run.logprobs.insert(run.logprobs.end(), o.logprobs.begin(), o.logprobs.end());
      if (o.finished()) {
        run.last = o;
        ++run.finals;
      }
    }
  }
  EXPECT_FALSE(engine.HasUnfinished());
  EXPECT_EQ(engine.scheduler().block_manager().num_used_blocks(), 0);
  return runs;
}

Outputs RunAlone(Engine& engine, EngineRequest request) {
  return std::move(RunChoices(engine, std::move(request))[0]);
}

std::vector<int32_t> Prompt(bool stories) {
  if (stories) {
    const auto refs = testing::LoadGreedyReference();
    if (!refs.empty()) return refs[0].prompt;
  }
  std::vector<int32_t> p;
  for (int i = 0; i < 11; ++i) p.push_back(3 + (i * 37) % 500);
  return p;
}

struct Variant {
  std::string name;
  EngineRequest request;
};

std::vector<Variant> Variants(bool stories) {
  EngineRequest base;
  base.request_id = "r";
  base.prompt_token_ids = Prompt(stories);
  base.params.max_tokens = 40;
  base.params.ignore_eos = true;
  base.params.logprobs = 2;
  base.return_text = stories;
  std::vector<Variant> v;
  Variant greedy{"greedy", base};
  greedy.request.params.temperature = 0.0f;
  v.push_back(greedy);
  Variant seeded{"seeded sampling", base};
  seeded.request.params.temperature = stories ? 1.0f : 10.0f;
  seeded.request.params.seed = 1234;
  v.push_back(seeded);
  Variant penalised{"seeded sampling with penalties", seeded.request};
  penalised.request.params.seed = 99;
  penalised.request.params.frequency_penalty = 0.7f;
  penalised.request.params.presence_penalty = 0.4f;
  penalised.request.params.repetition_penalty = 1.3f;
  v.push_back(penalised);
  return v;
}

// Runs `variant` uninterrupted, then continued after every cut point, and
// compares.
void CheckEveryCut(bool stories, bool prefix_caching, const Variant& variant,
                   const std::string& what_base) {
  const std::string what = what_base + ", " + variant.name;
  auto replica = MakeReplica(stories, prefix_caching);
  ASSERT_NE(replica, nullptr);
  Engine& engine = *replica->engine;
  const Outputs whole = RunAlone(engine, variant.request);
  ASSERT_EQ(whole.finals, 1) << what;
  ASSERT_GE(whole.tokens.size(), 2u) << what;
  const int prompt_len = static_cast<int>(variant.request.prompt_token_ids.size());
  for (int k = 1; k < static_cast<int>(whole.tokens.size()); ++k) {
    const std::string at = what + ", continued after " + std::to_string(k) + " tokens";
    EngineRequest next = variant.request;
    next.request_id = "c" + std::to_string(k);
    next.continued_output.assign(whole.tokens.begin(), whole.tokens.begin() + k);
    const Outputs rest = RunAlone(engine, std::move(next));
    std::vector<int32_t> joined(whole.tokens.begin(), whole.tokens.begin() + k);
    joined.insert(joined.end(), rest.tokens.begin(), rest.tokens.end());
    ASSERT_EQ(joined, whole.tokens) << at;
    EXPECT_EQ(whole.TextAfter(k) + rest.text(), whole.text()) << at;
    EXPECT_EQ(rest.last.finish_reason, whole.last.finish_reason) << at;
    EXPECT_EQ(rest.last.completion_tokens, whole.last.completion_tokens) << at;
    EXPECT_EQ(rest.last.prompt_tokens, prompt_len) << at;
    EXPECT_LE(rest.last.cached_prompt_tokens, prompt_len) << at;
    ASSERT_EQ(rest.logprobs.size(), whole.tokens.size() - k) << at;
    for (size_t i = 0; i < rest.logprobs.size(); ++i) {
      const SampleResult& a = whole.logprobs[k + i];
      const SampleResult& b = rest.logprobs[i];
      EXPECT_EQ(b.token, a.token) << at << ", logprob " << i;
      EXPECT_NEAR(b.logprob, a.logprob, 1e-4) << at << ", logprob " << i;
      ASSERT_EQ(b.top_logprobs.size(), a.top_logprobs.size()) << at;
      for (size_t j = 0; j < a.top_logprobs.size(); ++j) {
        EXPECT_EQ(b.top_logprobs[j].first, a.top_logprobs[j].first) << at;
      }
    }
  }
}

TEST(EngineContinuationTest, EveryCutContinuesExactlyTheUninterruptedRun) {
  for (const bool stories : {false, true}) {
    if (stories && !testing::HaveStories()) {
      std::cerr << "stories260K not found under ../shared: checked with the tiny model only\n";
      continue;
    }
    for (const bool caching : {true, false}) {
      const std::string what = std::string(stories ? "stories260K" : "tiny") + ", prefix caching " +
                               (caching ? "on" : "off");
      for (const Variant& v : Variants(stories)) CheckEveryCut(stories, caching, v, what);
    }
  }
}

// A stop string taken from the uninterrupted text: every cut before it --
// including those where the text so far ends in a prefix of the stop string,
// which the matcher holds back -- ends at the same place with the same text.
TEST(EngineContinuationTest, StopStringsContinueAcrossTheCut) {
  if (!testing::HaveStories()) GTEST_SKIP() << "stories260K not found under ../shared";
  for (Variant v : Variants(/*stories=*/true)) {
    auto replica = MakeReplica(true, true);
    ASSERT_NE(replica, nullptr);
    const std::string free_text = RunAlone(*replica->engine, v.request).text();
    ASSERT_GT(free_text.size(), 40u) << v.name;
    // A stop string that first occurs about two thirds of the way in.
    std::string stop;
    for (size_t pos = free_text.size() * 2 / 3; pos + 6 <= free_text.size(); ++pos) {
      const std::string candidate = free_text.substr(pos, 6);
      if (free_text.find(candidate) == pos) {
        stop = candidate;
        break;
      }
    }
    ASSERT_FALSE(stop.empty()) << v.name << ": no unique 6-byte string in " << free_text;
    v.name += " and stop string \"" + stop + "\"";
    v.request.params.stop = {stop, "zzzzzzzz"};
    auto check = MakeReplica(true, true);
    const Outputs whole = RunAlone(*check->engine, v.request);
    ASSERT_EQ(whole.last.finish_reason, FinishReason::kStop) << v.name;
    EXPECT_EQ(whole.text(), free_text.substr(0, free_text.find(stop))) << v.name;
    CheckEveryCut(true, true, v, "stories260K");
  }
}

// n = 3, seeded: the uninterrupted run's choices, then continuations in
// which each choice is finished (not run again), cut after k of its tokens
// (k = 0 included: it had given nothing yet), in several mixes.
TEST(EngineContinuationTest, ParallelSamplingContinuesEachChoiceExactly) {
  for (const bool stories : {false, true}) {
    if (stories && !testing::HaveStories()) {
      std::cerr << "stories260K not found under ../shared: checked with the tiny model only\n";
      continue;
    }
    for (Variant v : Variants(stories)) {
      if (!v.request.params.seed.has_value()) continue;  // greedy choices are all alike
      v.request.params.n = 3;
      v.request.params.max_tokens = 24;
      const std::string what = std::string(stories ? "stories260K, " : "tiny, ") + v.name;
      auto replica = MakeReplica(stories, /*prefix_caching=*/true, /*batch_invariant=*/true);
      ASSERT_NE(replica, nullptr);
      Engine& engine = *replica->engine;
      const std::vector<Outputs> whole = RunChoices(engine, v.request);
      for (int c = 0; c < 3; ++c) {
        ASSERT_EQ(whole[c].finals, 1) << what << ", choice " << c;
        ASSERT_EQ(whole[c].tokens.size(), 24u) << what << ", choice " << c;
      }
      ASSERT_NE(whole[0].tokens, whole[1].tokens) << what << ": the choices should differ";
      // cuts[c]: -1 finished (the client has it whole), else its tokens delivered.
      const std::vector<std::vector<int>> mixes = {{5, 5, 5},    {1, 17, 0}, {-1, 9, 23},
                                                   {12, -1, -1}, {0, 0, 0},  {23, 3, -1}};
      int cut = 0;
      for (const std::vector<int>& cuts : mixes) {
        const std::string at = what + ", mix " + std::to_string(cut);
        EngineRequest next = v.request;
        next.request_id = "n" + std::to_string(cut++);
        for (int c = 0; c < 3; ++c) {
          if (cuts[c] < 0) continue;
          next.continued_choices.push_back(ContinuedChoice{
              c, std::vector<int32_t>(whole[c].tokens.begin(), whole[c].tokens.begin() + cuts[c])});
        }
        const std::vector<Outputs> rest = RunChoices(engine, next);
        for (int c = 0; c < 3; ++c) {
          const std::string choice = at + ", choice " + std::to_string(c);
          if (cuts[c] < 0) {
            EXPECT_EQ(rest[c].finals, 0) << choice << ": a finished choice ran again";
            EXPECT_TRUE(rest[c].tokens.empty()) << choice;
            continue;
          }
          const int k = cuts[c];
          ASSERT_EQ(rest[c].finals, 1) << choice;
          std::vector<int32_t> joined(whole[c].tokens.begin(), whole[c].tokens.begin() + k);
          joined.insert(joined.end(), rest[c].tokens.begin(), rest[c].tokens.end());
          EXPECT_EQ(joined, whole[c].tokens) << choice;
          EXPECT_EQ(whole[c].TextAfter(k) + rest[c].text(), whole[c].text()) << choice;
          EXPECT_EQ(rest[c].last.finish_reason, whole[c].last.finish_reason) << choice;
          EXPECT_EQ(rest[c].last.completion_tokens, whole[c].last.completion_tokens) << choice;
          ASSERT_EQ(rest[c].logprobs.size(), whole[c].tokens.size() - k) << choice;
          for (size_t i = 0; i < rest[c].logprobs.size(); ++i) {
            EXPECT_NEAR(rest[c].logprobs[i].logprob, whole[c].logprobs[k + i].logprob, 1e-4)
                << choice << ", logprob " << i;
          }
        }
      }
    }
  }
}

// Aborting a continued n > 1 request ends each choice it runs, under the
// request's id, and frees the id.
TEST(EngineContinuationTest, AContinuedParallelRequestAbortsAsOne) {
  auto replica = MakeReplica(false, true);
  ASSERT_NE(replica, nullptr);
  Engine& engine = *replica->engine;
  EngineRequest r;
  r.request_id = "p";
  r.prompt_token_ids = Prompt(false);
  r.params.max_tokens = 30;
  r.params.n = 4;
  r.params.seed = 5;
  r.params.temperature = 1.0f;
  r.continued_choices = {{1, {7, 8}}, {3, {}}};
  ASSERT_TRUE(engine.AddRequest(r).ok());
  EXPECT_EQ(engine.AddRequest(r).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(engine.Step().ok());
  ASSERT_TRUE(engine.Abort("p"));
  std::vector<int> aborted;
  for (int guard = 0; engine.HasUnfinished() || aborted.size() < 2; ++guard) {
    ASSERT_LT(guard, 10);
    auto outputs = engine.Step();
    ASSERT_TRUE(outputs.ok()) << outputs.status();
    for (const RequestOutput& o : *outputs) {
      EXPECT_EQ(o.request_id, "p");
      if (o.finished()) {
        EXPECT_EQ(o.finish_reason, FinishReason::kAbort);
        aborted.push_back(o.index);
      }
    }
  }
  EXPECT_THAT(aborted, ::testing::UnorderedElementsAre(1, 3));
  EXPECT_FALSE(engine.Abort("p"));
  EXPECT_TRUE(engine.AddRequest(r).ok()) << "the id is free again";
}

TEST(EngineContinuationTest, ABadContinuationIsRefusedNamingTheField) {
  auto replica = MakeReplica(false, true);
  ASSERT_NE(replica, nullptr);
  EngineRequest r;
  r.request_id = "bad";
  r.prompt_token_ids = Prompt(false);
  r.params.max_tokens = 4;
  r.continued_output = {5, 6, 7, 8};
  absl::Status s = replica->engine->AddRequest(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("fewer than sampling.max_tokens (4)"));
  r.continued_output = {5, 100000};
  s = replica->engine->AddRequest(r);
  EXPECT_THAT(s.message(), HasSubstr("continuation.output_token_ids[1] = 100000"));
  r.continued_output = {5};
  r.params.n = 2;
  s = replica->engine->AddRequest(r);
  EXPECT_THAT(s.message(), HasSubstr("continuation.choices"));
  r.continued_output.clear();
  r.continued_choices = {{0, {5}}, {2, {6}}};
  s = replica->engine->AddRequest(r);
  EXPECT_THAT(s.message(), HasSubstr("continuation.choices[1].index = 2 is outside [0, 2)"));
  r.continued_choices = {{1, {5}}, {1, {6}}};
  s = replica->engine->AddRequest(r);
  EXPECT_THAT(s.message(), HasSubstr("continuation.choices[1].index = 1 is given twice"));
  r.continued_choices = {{1, {5, 6, 7, 8}}};
  s = replica->engine->AddRequest(r);
  EXPECT_THAT(s.message(), HasSubstr("continuation.choices[0].output_token_ids has 4 tokens"));
  r.params.n = 1;
  r.continued_choices = {{0, {5}}};
  s = replica->engine->AddRequest(r);
  EXPECT_THAT(s.message(), HasSubstr("continuation.choices is for sampling.n > 1"));
  EXPECT_FALSE(replica->engine->HasUnfinished());
}

}  // namespace
}  // namespace tessera
