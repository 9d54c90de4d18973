// The output processor decides every reason a choice finishes: EOS (unless
// ignore_eos), stop token ids, length (max_tokens, max_model_len) through its
// StopChecker, and stop strings on the text; and, through a whole Engine, a
// choice it ends leaves the scheduler (blocks freed) in the same Step().
#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/requests.h"
#include "worker/engine/output_processor.h"
#include "worker/engine/stop_checker.h"
#include "worker/replica.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int32_t kEos = 2;  // the byte tokenizer's EOS (special: no text)
constexpr int kMaxModelLen = 64;

// The byte tokenizer: byte b is token b + 3.
int32_t Tok(unsigned char byte) { return static_cast<int32_t>(byte) + 3; }

// The `completion`-th output of a request with `prompt` prompt tokens: one new token.
RequestOutput Out(const std::string& id, int32_t token, int prompt, int completion, int index = 0) {
  RequestOutput o;
  o.request_id = id;
  o.index = index;
  o.new_tokens = {token};
  o.prompt_tokens = prompt;
  o.completion_tokens = completion;
  return o;
}

SamplingParams Params(int max_tokens) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  return p;
}

// (request id, index, reason) of what a Process call ended.
using Ended = std::tuple<std::string, int, FinishReason>;
std::vector<Ended> Tuples(const std::vector<OutputProcessor::Finished>& finished) {
  std::vector<Ended> v;
  for (const OutputProcessor::Finished& f : finished)
    v.emplace_back(f.request_id, f.index, f.reason);
  return v;
}

class OutputProcessorStopTest : public ::testing::Test {
 protected:
  std::unique_ptr<Tokenizer> tokenizer_ = MakeByteTokenizer(512);
  OutputProcessor processor_{tokenizer_.get(), StopChecker({kEos}, kMaxModelLen)};

  // Feeds one output; returns it as processed, and what the call ended.
  RequestOutput Feed(RequestOutput o, std::vector<Ended>* ended = nullptr) {
    std::vector<RequestOutput> step{std::move(o)};
    std::vector<Ended> e = Tuples(processor_.Process(step));
    if (ended != nullptr) *ended = std::move(e);
    return step[0];
  }
};

TEST_F(OutputProcessorStopTest, EosEndsTheChoiceWithTheEosToken) {
  processor_.Add("r", {}, Params(10), /*return_text=*/true);
  std::vector<Ended> ended;
  EXPECT_FALSE(Feed(Out("r", Tok('a'), 3, 1), &ended).finished());
  EXPECT_THAT(ended, IsEmpty());
  const RequestOutput last = Feed(Out("r", kEos, 3, 2), &ended);
  EXPECT_EQ(last.finish_reason, FinishReason::kEos);
  EXPECT_THAT(last.new_tokens, ElementsAre(kEos)) << "the EOS token is part of the output";
  EXPECT_THAT(ended, ElementsAre(Ended{"r", 0, FinishReason::kEos}));
  EXPECT_EQ(processor_.size(), 0u);
}

TEST_F(OutputProcessorStopTest, IgnoreEosRunsToItsLength) {
  SamplingParams p = Params(3);
  p.ignore_eos = true;
  processor_.Add("r", {}, p, /*return_text=*/false);
  std::vector<Ended> ended;
  EXPECT_EQ(Feed(Out("r", kEos, 3, 1), &ended).finish_reason, FinishReason::kNone);
  EXPECT_EQ(Feed(Out("r", kEos, 3, 2), &ended).finish_reason, FinishReason::kNone);
  EXPECT_THAT(ended, IsEmpty());
  EXPECT_EQ(Feed(Out("r", kEos, 3, 3), &ended).finish_reason, FinishReason::kLength);
  EXPECT_THAT(ended, ElementsAre(Ended{"r", 0, FinishReason::kLength}));
}

TEST_F(OutputProcessorStopTest, StopTokenIdsEndWithStop) {
  SamplingParams p = Params(10);
  p.stop_token_ids = {Tok('q'), Tok('z')};
  processor_.Add("r", {}, p, /*return_text=*/true);
  std::vector<Ended> ended;
  EXPECT_EQ(Feed(Out("r", Tok('a'), 3, 1), &ended).text, "a");
  const RequestOutput last = Feed(Out("r", Tok('z'), 3, 2), &ended);
  EXPECT_EQ(last.finish_reason, FinishReason::kStop);
  EXPECT_EQ(last.text, "z") << "a stop token's text is output (only a stop string is cut)";
  EXPECT_THAT(ended, ElementsAre(Ended{"r", 0, FinishReason::kStop}));
}

TEST_F(OutputProcessorStopTest, EosBeforeStopTokenBeforeLength) {
  // EOS is also a stop token id, on the last allowed token: EOS wins.
  SamplingParams p = Params(1);
  p.stop_token_ids = {kEos};
  processor_.Add("a", {}, p, /*return_text=*/false);
  EXPECT_EQ(Feed(Out("a", kEos, 3, 1)).finish_reason, FinishReason::kEos);
  // A stop token on the last allowed token: stop, not length.
  p.stop_token_ids = {Tok('s')};
  processor_.Add("b", {}, p, /*return_text=*/false);
  EXPECT_EQ(Feed(Out("b", Tok('s'), 3, 1)).finish_reason, FinishReason::kStop);
}

TEST_F(OutputProcessorStopTest, LengthIsMaxTokensOrTheModelLength) {
  processor_.Add("short", {}, Params(2), /*return_text=*/false);
  EXPECT_EQ(Feed(Out("short", Tok('a'), 3, 1)).finish_reason, FinishReason::kNone);
  EXPECT_EQ(Feed(Out("short", Tok('a'), 3, 2)).finish_reason, FinishReason::kLength);
  // max_tokens would allow more, the model length does not: prompt 60 + 4 = 64.
  processor_.Add("long", {}, Params(30), /*return_text=*/false);
  EXPECT_EQ(Feed(Out("long", Tok('a'), 60, 3)).finish_reason, FinishReason::kNone);
  std::vector<Ended> ended;
  EXPECT_EQ(Feed(Out("long", Tok('a'), 60, 4), &ended).finish_reason, FinishReason::kLength);
  EXPECT_THAT(ended, ElementsAre(Ended{"long", 0, FinishReason::kLength}));
}

TEST_F(OutputProcessorStopTest, AStopStringInTheSameStepAsAStopTokenMakesOneStop) {
  SamplingParams p = Params(10);
  p.stop = {"yz"};
  p.stop_token_ids = {Tok('z')};
  processor_.Add("r", {}, p, /*return_text=*/true);
  std::vector<Ended> ended;
  EXPECT_EQ(Feed(Out("r", Tok('x'), 3, 1)).text, "");  // held back: could start "yz"
  EXPECT_EQ(Feed(Out("r", Tok('y'), 3, 2)).text, "x");
  const RequestOutput last = Feed(Out("r", Tok('z'), 3, 3), &ended);
  EXPECT_EQ(last.finish_reason, FinishReason::kStop);
  EXPECT_EQ(last.text, "") << "the text stops before the stop string";
  EXPECT_THAT(ended, ElementsAre(Ended{"r", 0, FinishReason::kStop})) << "ended once";
}

TEST_F(OutputProcessorStopTest, AStopStringOnTheLastTokenWinsOverLengthAndEosFlushes) {
  SamplingParams p = Params(2);
  p.stop = {"ab"};
  processor_.Add("len", {}, p, /*return_text=*/true);
  EXPECT_EQ(Feed(Out("len", Tok('a'), 3, 1)).text, "");
  std::vector<Ended> ended;
  const RequestOutput last = Feed(Out("len", Tok('b'), 3, 2), &ended);
  EXPECT_EQ(last.finish_reason, FinishReason::kStop);
  EXPECT_THAT(ended, ElementsAre(Ended{"len", 0, FinishReason::kStop}));
  // EOS with text held back for a stop string that never came: released.
  processor_.Add("eos", {}, p, /*return_text=*/true);
  EXPECT_EQ(Feed(Out("eos", Tok('a'), 3, 1)).text, "");
  const RequestOutput eos = Feed(Out("eos", kEos, 3, 2), &ended);
  EXPECT_EQ(eos.finish_reason, FinishReason::kEos);
  EXPECT_EQ(eos.text, "a");
}

TEST_F(OutputProcessorStopTest, ChoicesEndOnTheirOwnAndAbortsAreNotReturned) {
  SamplingParams p = Params(3);
  p.n = 3;
  processor_.Add("r", {}, p, /*return_text=*/false);
  std::vector<RequestOutput> step;
  step.push_back(Out("r", kEos, 3, 1, /*index=*/0));
  step.push_back(Out("r", Tok('a'), 3, 1, /*index=*/1));
  step.push_back(Out("r", Tok('a'), 3, 1, /*index=*/2));
  EXPECT_THAT(Tuples(processor_.Process(step)), ElementsAre(Ended{"r", 0, FinishReason::kEos}));
  EXPECT_FALSE(step[1].finished());
  // Choice 1 aborted by the scheduler (final on arrival), choice 2 at length.
  RequestOutput aborted;
  aborted.request_id = "r";
  aborted.index = 1;
  aborted.finish_reason = FinishReason::kAbort;
  step = {aborted, Out("r", Tok('a'), 3, 3, /*index=*/2)};
  EXPECT_THAT(Tuples(processor_.Process(step)), ElementsAre(Ended{"r", 2, FinishReason::kLength}));
  EXPECT_EQ(step[0].finish_reason, FinishReason::kAbort);
  EXPECT_EQ(processor_.size(), 0u) << "the request goes with its last choice";
}

TEST(StopCheckerTest, DecidesFromTheCountsItIsGiven) {
  const StopChecker checker({kEos, 7}, /*max_model_len=*/10);
  StopConditions c;
  c.max_tokens = 5;
  EXPECT_EQ(checker.Check(c, 7, 2, 1), FinishReason::kEos) << "every EOS token counts";
  EXPECT_EQ(checker.Check(c, 9, 2, 4), FinishReason::kNone);
  EXPECT_EQ(checker.Check(c, 9, 2, 5), FinishReason::kLength);
  EXPECT_EQ(checker.Check(c, 9, 6, 4), FinishReason::kLength) << "6 + 4 = max_model_len";
  c.ignore_eos = true;
  c.stop_token_ids = {kEos};
  EXPECT_EQ(checker.Check(c, kEos, 2, 1), FinishReason::kStop)
      << "ignore_eos does not ignore a stop token id";
}

// Through an Engine: the step that produced a choice's last token also freed
// its blocks, and an aborted request's id is free only once its final output
// came.
TEST(EngineStopTest, AFinishedChoiceLeavesTheSchedulerInTheSameStep) {
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dummy_seed = 11;
  o.cache.block_size = 4;
  o.cache.num_blocks = 64;
  o.cache.enable_prefix_caching = true;
  o.sched.max_model_len = 128;
  o.threads = 1;
  absl::StatusOr<std::unique_ptr<Replica>> replica =
      BuildReplica(o, MakeSingleProcessCommunicator());
  ASSERT_TRUE(replica.ok()) << replica.status();
  Engine& engine = *(*replica)->engine;
  // Learn the greedy tokens, then stop at the third one by its id.
  std::vector<int32_t> tokens;
  ASSERT_TRUE(engine.AddRequest(testing::GreedyEngineRequest("free", {1, 60, 61, 62, 63}, 6)).ok());
  while (engine.HasUnfinished()) {
    absl::StatusOr<std::vector<RequestOutput>> out = engine.Step();
    ASSERT_TRUE(out.ok()) << out.status();
    for (const RequestOutput& r : *out)
      tokens.insert(tokens.end(), r.new_tokens.begin(), r.new_tokens.end());
  }
  ASSERT_EQ(tokens.size(), 6u);
  EngineRequest stopped = testing::GreedyEngineRequest("stopped", {1, 60, 61, 62, 63}, 6);
  stopped.params.stop_token_ids = {tokens[2]};
  ASSERT_TRUE(engine.AddRequest(std::move(stopped)).ok());
  std::vector<int32_t> got;
  FinishReason reason = FinishReason::kNone;
  for (int steps = 0; reason == FinishReason::kNone && steps < 20; ++steps) {
    absl::StatusOr<std::vector<RequestOutput>> out = engine.Step();
    ASSERT_TRUE(out.ok()) << out.status();
    for (const RequestOutput& r : *out) {
      got.insert(got.end(), r.new_tokens.begin(), r.new_tokens.end());
      reason = r.finish_reason;
    }
  }
  EXPECT_EQ(reason, FinishReason::kStop);
  const size_t first = std::find(tokens.begin(), tokens.end(), tokens[2]) - tokens.begin();
  EXPECT_EQ(got, std::vector<int32_t>(tokens.begin(), tokens.begin() + first + 1));
  // Freed by the step that produced it, not a later one.
  EXPECT_FALSE(engine.HasUnfinished());
  EXPECT_EQ(engine.scheduler().Find("stopped"), nullptr);
  EXPECT_EQ(engine.scheduler().block_manager().num_used_blocks(), 0);

  // Aborted: the id is taken until the next Step() delivers its final output.
  ASSERT_TRUE(engine.AddRequest(testing::GreedyEngineRequest("x", {1, 60}, 6)).ok());
  ASSERT_TRUE(engine.Step().ok());
  ASSERT_TRUE(engine.Abort("x"));
  EXPECT_EQ(engine.AddRequest(testing::GreedyEngineRequest("x", {1, 60}, 6)).code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<std::vector<RequestOutput>> out = engine.Step();
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].finish_reason, FinishReason::kAbort);
  EXPECT_TRUE(engine.AddRequest(testing::GreedyEngineRequest("x", {1, 60}, 6)).ok());
}

}  // namespace
}  // namespace tessera
