// The engine's output path (OutputProcessor): text only when asked, stop
// strings end a request and cut its text, held-back text is flushed at the
// end, characters split across tokens, and the same through a whole Engine
// (what tessera-generate and the gRPC stream both get).
#include "worker/engine/output_processor.h"

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/requests.h"
#include "tests/testing/tokenizers.h"
#include "worker/replica.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The byte tokenizer: byte b is token b + 3.
int32_t Tok(unsigned char byte) { return static_cast<int32_t>(byte) + 3; }

RequestOutput Out(const std::string& id, std::vector<int32_t> tokens,
                  FinishReason reason = FinishReason::kNone) {
  RequestOutput o;
  o.request_id = id;
  o.new_tokens = std::move(tokens);
  o.finish_reason = reason;
  return o;
}

// The request ids of the choices a Process call ended.
std::vector<std::string> Ids(const std::vector<OutputProcessor::Finished>& finished) {
  std::vector<std::string> ids;
  for (const OutputProcessor::Finished& f : finished) ids.push_back(f.request_id);
  return ids;
}

// Sampling parameters with stop strings `stop` (and n choices).
SamplingParams Stop(std::vector<std::string> stop, int n = 1) {
  SamplingParams p;
  p.stop = std::move(stop);
  p.n = n;
  return p;
}

// No EOS token, and a model length no test reaches.
StopChecker NoStopTokens() { return StopChecker({}, 1 << 20); }

class OutputProcessorTest : public ::testing::Test {
 protected:
  std::unique_ptr<Tokenizer> tokenizer_ = MakeByteTokenizer(512);
  OutputProcessor processor_{tokenizer_.get(), NoStopTokens()};

  // Feeds one output; returns it as processed (or nothing when dropped) and
  // the ids the call ended.
  std::vector<RequestOutput> Feed(RequestOutput o, std::vector<std::string>* ended = nullptr) {
    std::vector<RequestOutput> step;
    step.push_back(std::move(o));
    std::vector<std::string> e = Ids(processor_.Process(step));
    if (ended != nullptr) *ended = std::move(e);
    return step;
  }
};

TEST_F(OutputProcessorTest, TextOnlyWhenAsked) {
  processor_.Add("text", {}, {}, /*return_text=*/true);
  processor_.Add("ids", {}, {}, /*return_text=*/false);
  EXPECT_EQ(Feed(Out("text", {Tok('h')}))[0].text, "h");
  EXPECT_EQ(Feed(Out("ids", {Tok('h')}))[0].text, "");
  EXPECT_EQ(Feed(Out("text", {Tok('i')}, FinishReason::kLength))[0].text, "i");
  EXPECT_EQ(processor_.size(), 1u);  // "text" finished
}

TEST_F(OutputProcessorTest, AStopStringEndsTheRequestBeforeIt) {
  processor_.Add("r", {}, Stop({"lo"}), /*return_text=*/true);
  std::string text;
  std::vector<std::string> ended;
  for (char c : std::string("hel")) {
    std::vector<RequestOutput> out = Feed(Out("r", {Tok(c)}), &ended);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FALSE(out[0].finished());
    EXPECT_THAT(ended, IsEmpty());
    text += out[0].text;
  }
  EXPECT_EQ(text, "he");  // one character held back (the longest stop string - 1)
  std::vector<RequestOutput> out = Feed(Out("r", {Tok('o')}), &ended);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(text + out[0].text, "he");  // "helo": everything before "lo"
  EXPECT_THAT(ended, ElementsAre("r"));
  // The caller finishes it in the scheduler (FinishChoice): nothing more of
  // it comes, and it is no longer tracked.
  EXPECT_EQ(processor_.size(), 0u);
}

TEST_F(OutputProcessorTest, StopStringsApplyWithoutReturningText) {
  processor_.Add("r", {}, Stop({"b"}), /*return_text=*/false);
  std::vector<std::string> ended;
  EXPECT_EQ(Feed(Out("r", {Tok('a')}), &ended)[0].finish_reason, FinishReason::kNone);
  std::vector<RequestOutput> out = Feed(Out("r", {Tok('b')}), &ended);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[0].text, "");
  EXPECT_THAT(ended, ElementsAre("r"));
}

TEST_F(OutputProcessorTest, TheLastOutputFlushesWhatWasHeldBack) {
  processor_.Add("r", {}, Stop({"xyz"}), /*return_text=*/true);
  // Two characters held back (the longest stop string - 1)...
  EXPECT_EQ(Feed(Out("r", {Tok('a'), Tok('x')}))[0].text, "");
  EXPECT_EQ(Feed(Out("r", {Tok('b')}))[0].text, "a");
  // ...and released with the last output.
  std::vector<RequestOutput> out = Feed(Out("r", {Tok('y')}, FinishReason::kLength));
  EXPECT_EQ(out[0].text, "xby");
  EXPECT_EQ(out[0].finish_reason, FinishReason::kLength);
}

TEST_F(OutputProcessorTest, AStopStringOnTheLastTokenMakesItAStop) {
  processor_.Add("r", {}, Stop({"ab"}), /*return_text=*/true);
  EXPECT_EQ(Feed(Out("r", {Tok('a')}))[0].text, "");
  std::vector<std::string> ended;
  std::vector<RequestOutput> out = Feed(Out("r", {Tok('b')}, FinishReason::kLength), &ended);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[0].text, "");
  EXPECT_THAT(ended, IsEmpty());  // already finished in the scheduler
}

TEST_F(OutputProcessorTest, ACharacterSplitAcrossTokensComesWhole) {
  processor_.Add("r", {}, {}, /*return_text=*/true);
  const std::string e_acute = "\xc3\xa9";
  EXPECT_EQ(Feed(Out("r", {Tok(e_acute[0])}))[0].text, "");
  EXPECT_EQ(Feed(Out("r", {Tok(e_acute[1])}))[0].text, e_acute);
}

TEST_F(OutputProcessorTest, OutputsOfOtherRequestsPassThroughInOrder) {
  processor_.Add("a", {}, Stop({"z"}), /*return_text=*/true);
  std::vector<RequestOutput> step;
  step.push_back(Out("a", {Tok('z')}));
  step.push_back(Out("untracked", {Tok('q')}));
  const std::vector<std::string> ended = Ids(processor_.Process(step));
  ASSERT_EQ(step.size(), 2u);
  EXPECT_EQ(step[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(step[1].request_id, "untracked");
  EXPECT_EQ(step[1].text, "");
  EXPECT_THAT(ended, ElementsAre("a"));
}

TEST(OutputProcessorWithoutTokenizer, PassesEverythingThrough) {
  OutputProcessor p(nullptr, NoStopTokens());
  p.Add("r", {}, Stop({"a"}), /*return_text=*/true);
  std::vector<RequestOutput> step;
  step.push_back(Out("r", {Tok('a')}));
  EXPECT_THAT(p.Process(step), IsEmpty());
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].text, "");
  EXPECT_FALSE(step[0].finished());
}

// Outputs find their request through the slot Add returned (the engine's
// per-token path); a slot is reused only after its request's last output,
// and an output whose slot now holds another request is matched by its id.
TEST(OutputProcessorSlots, OutputsFindTheirRequestBySlotAndAReusedSlotIsNotConfused) {
  auto tokenizer = MakeByteTokenizer(512);
  OutputProcessor p(tokenizer.get(), NoStopTokens());
  const int32_t a = p.Add("a", {}, Stop({"xy"}), /*return_text=*/true);
  const int32_t b = p.Add("b", {}, Stop({}), /*return_text=*/true);
  EXPECT_NE(a, b);
  std::vector<RequestOutput> step = {Out("a", {Tok('x')}), Out("b", {Tok('q')})};
  step[0].output_slot = a;
  step[1].output_slot = b;
  EXPECT_THAT(p.Process(step), IsEmpty());
  EXPECT_EQ(step[0].text, "");  // held back: a prefix of the stop string "xy"
  EXPECT_EQ(step[1].text, "q");
  // "a" ends at its stop string; its slot is free again.
  step = {Out("a", {Tok('y')})};
  step[0].output_slot = a;
  EXPECT_THAT(Ids(p.Process(step)), ElementsAre("a"));
  EXPECT_FALSE(p.contains("a"));
  const int32_t c = p.Add("c", {}, Stop({}), /*return_text=*/true);
  EXPECT_EQ(c, a) << "the freed slot is reused";
  // A late output of "a" carrying the old slot does not touch "c".
  step = {Out("a", {Tok('z')}), Out("c", {Tok('k')})};
  step[0].output_slot = a;
  step[1].output_slot = c;
  EXPECT_THAT(p.Process(step), IsEmpty());
  EXPECT_EQ(step[0].text, "") << "not tracked: passed through";
  EXPECT_EQ(step[1].text, "k");
  // By id (no slot) still works, and Remove frees a request that never ran.
  step = {Out("b", {Tok('r')}, FinishReason::kLength)};
  p.Process(step);
  EXPECT_EQ(step[0].text, "r");
  EXPECT_FALSE(p.contains("b"));
  p.Remove("c");
  EXPECT_EQ(p.size(), 0u);
}

// Through the engine (as tessera-generate runs it): greedy text, then the
// same request with a stop string taken from that text ends before it.
std::pair<std::string, FinishReason> RunOne(Engine& engine, EngineRequest r) {
  const std::string id = r.request_id;
  EXPECT_TRUE(engine.AddRequest(std::move(r)).ok());
  std::string text;
  FinishReason reason = FinishReason::kNone;
  for (int steps = 0; engine.HasUnfinished() && steps < 200; ++steps) {
    absl::StatusOr<std::vector<RequestOutput>> out = engine.Step();
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) break;
    for (const RequestOutput& o : *out) {
      EXPECT_EQ(o.request_id, id);
      EXPECT_EQ(reason, FinishReason::kNone) << "output after the end";
      text += o.text;
      if (o.finished()) reason = o.finish_reason;
    }
  }
  return {text, reason};
}

TEST(EngineOutputPath, StopStringsAndTextReachEveryCallerOfTheEngine) {
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dummy_seed = 11;
  o.cache.block_size = 16;
  o.cache.num_blocks = 64;
  o.sched.max_model_len = 256;
  o.threads = 1;
  absl::StatusOr<std::unique_ptr<Replica>> replica =
      BuildReplica(o, MakeSingleProcessCommunicator());
  ASSERT_TRUE(replica.ok()) << replica.status();
  Engine& engine = *(*replica)->engine;
  EngineRequest free_run = testing::GreedyEngineRequest("free", {1, 60, 61, 62}, 12);
  free_run.return_text = true;
  const auto [text, reason] = RunOne(engine, free_run);
  EXPECT_EQ(reason, FinishReason::kLength);
  // The dummy model's greedy text is arbitrary: take its second half (from a
  // character boundary) as the stop string; the text must end before its
  // first occurrence.
  ASSERT_GE(text.size(), 2u) << "dummy text too short: '" << text << "'";
  size_t half = text.size() / 2;
  while (half > 0 && (static_cast<unsigned char>(text[half]) & 0xC0) == 0x80) --half;
  const std::string stop = text.substr(half);
  const size_t at = text.find(stop);
  EngineRequest stopped = testing::GreedyEngineRequest("stopped", {1, 60, 61, 62}, 12);
  stopped.return_text = true;
  stopped.params.stop = {stop};
  const auto [cut, cut_reason] = RunOne(engine, stopped);
  EXPECT_EQ(cut_reason, FinishReason::kStop);
  EXPECT_EQ(cut, text.substr(0, at));
  EXPECT_FALSE(engine.HasUnfinished());
}

// With a SentencePiece tokenizer (stories260K's, "▁" marks a space), the
// output's text continues the prompt: a first token "▁a" keeps its space, as
// llama2.c's run.c prints it, and the pieces are exactly its text.
TEST(OutputProcessorPromptTest, TextContinuesThePrompt) {
  TESSERA_REQUIRE_TOKENIZER("stories260K");
  const Tokenizer& tokenizer = *testing::SharedTokenizer("stories260K").tokenizer;
  int checked = 0;
  for (const nlohmann::json& ref :
       testing::ReadJsonl(testing::TokenizerDir("stories260K") + "/text_reference.jsonl")) {
    const auto prompt = ref.at("prompt").get<std::vector<int32_t>>();
    const auto generated = ref.at("generated").get<std::vector<int32_t>>();
    OutputProcessor processor(&tokenizer, NoStopTokens());
    const size_t context = std::min(prompt.size(), OutputProcessor::kPromptContextTokens);
    processor.Add("r", std::span<const int32_t>(prompt).last(context), {}, /*return_text=*/true);
    std::string text;
    for (size_t i = 0; i < generated.size(); ++i) {
      std::vector<RequestOutput> step;
      step.push_back(Out("r", {generated[i]},
                         i + 1 == generated.size() ? FinishReason::kLength : FinishReason::kNone));
      processor.Process(step);
      text += step[0].text;
    }
    EXPECT_EQ(text, ref.at("generated_text").get<std::string>());
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace tessera
