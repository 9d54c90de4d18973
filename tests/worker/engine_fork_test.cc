// Parallel sampling (n > 1) through the whole engine on the CPU with the tiny
// dummy model (and stories260K where ../shared has it): the prompt is
// prefilled once, the choices share its KV blocks (copy-on-write of the
// partial last block), and choice i of a request seeded s is token for token
// the n = 1 request seeded s + i -- which holds only if every choice reads
// exactly its own KV. The random tiny model is sharply peaked, so its sampled
// requests run at temperature 10 to make the choices diverge.
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/stories.h"
#include "worker/engine/engine.h"
#include "worker/replica.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

struct TinySetup {
  int block_size = 4;
  int64_t num_blocks = 256;
  int max_num_seqs = 8;
  bool prefix_caching = true;
  bool stories = false;  // stories260K instead of the tiny dummy
};

// Sampling temperature that makes the choices of `setup`'s model diverge.
float Temperature(const TinySetup& setup) { return setup.stories ? 1.0f : 10.0f; }

std::unique_ptr<Replica> MakeTiny(const TinySetup& s) {
  ReplicaOptions o;
  if (s.stories) {
    o.model_dir = testing::StoriesDir();
  } else {
    o.dummy_preset = "tiny";
    o.dummy_seed = 3;
  }
  o.cache.block_size = s.block_size;
  o.cache.num_blocks = s.num_blocks;
  o.cache.enable_prefix_caching = s.prefix_caching;
  o.sched.max_num_batched_tokens = 256;
  o.sched.max_num_seqs = s.max_num_seqs;
  o.sched.max_model_len = 256;
  o.threads = 1;
  auto r = BuildReplica(o, MakeSingleProcessCommunicator());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

std::vector<int32_t> Prompt(int len, int32_t salt = 0) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(3 + (i * 37 + salt * 11) % 500);
  return p;
}

EngineRequest Sampled(const std::string& id, std::vector<int32_t> prompt, int n,
                      std::optional<uint64_t> seed, int max_tokens = 12) {
  EngineRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.params.temperature = 10.0f;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.seed = seed;
  r.params.n = n;
  return r;
}

struct Choice {
  std::vector<int32_t> tokens;
  RequestOutput last;
  int finals = 0;
};
using Done = std::map<std::pair<std::string, int>, Choice>;
std::pair<std::string, int> K(std::string id, int choice) { return {std::move(id), choice}; }

std::map<std::pair<std::string, int>, std::vector<int32_t>> Tokens(const Done& done) {
  std::map<std::pair<std::string, int>, std::vector<int32_t>> out;
  for (const auto& [key, choice] : done) out[key] = choice.tokens;
  return out;
}

Done RunToCompletion(Engine& engine) {
  Done done;
  for (int guard = 0; engine.HasUnfinished() && guard < 10000; ++guard) {
    auto outputs = engine.Step();
    EXPECT_TRUE(outputs.ok()) << outputs.status();
    if (!outputs.ok()) break;
    for (RequestOutput& o : *outputs) {
      Choice& c = done[K(o.request_id, o.index)];
      c.tokens.insert(c.tokens.end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finished()) {
        c.last = o;
        ++c.finals;
      }
    }
    const absl::Status inv = engine.scheduler().CheckInvariants();
    EXPECT_TRUE(inv.ok()) << inv;
  }
  EXPECT_FALSE(engine.HasUnfinished());
  return done;
}

// The tokens of an n = 1 request seeded `seed`.
std::vector<int32_t> Alone(const TinySetup& setup, const std::vector<int32_t>& prompt,
                           uint64_t seed) {
  auto replica = MakeTiny(setup);
  EngineRequest r = Sampled("a", prompt, 1, seed);
  r.params.temperature = Temperature(setup);
  EXPECT_TRUE(replica->engine->AddRequest(std::move(r)).ok());
  return RunToCompletion(*replica->engine)[K("a", 0)].tokens;
}

TEST(EngineForkTest, ChoiceIEqualsASingleRequestSeededSPlusI) {
  // 10 tokens: a partial last block (shared, copied on write); 8: whole blocks.
  for (const bool stories : {false, true}) {
    if (stories && !testing::HaveStories()) {
      std::cerr << "stories260K not found under ../shared: checked with the tiny model only\n";
      continue;
    }
    for (const int prompt_len : {10, 8}) {
      for (const bool caching : {true, false}) {
        const TinySetup setup{.prefix_caching = caching, .stories = stories};
        const std::string what = std::string(stories ? "stories260K" : "tiny") + ", prompt " +
                                 std::to_string(prompt_len) + ", prefix caching " +
                                 (caching ? "on" : "off");
        auto replica = MakeTiny(setup);
        Engine& engine = *replica->engine;
        EngineRequest request = Sampled("r", Prompt(prompt_len), 3, 40);
        request.params.temperature = Temperature(setup);
        ASSERT_TRUE(engine.AddRequest(request).ok());
        Done done = RunToCompletion(engine);
        ASSERT_EQ(done.size(), 3u) << what;
        for (int c = 0; c < 3; ++c) {
          const Choice& choice = done[K("r", c)];
          EXPECT_EQ(choice.finals, 1) << what;
          EXPECT_EQ(choice.last.finish_reason, FinishReason::kLength) << what;
          EXPECT_EQ(choice.last.completion_tokens, 12) << what;
          EXPECT_EQ(choice.last.prompt_tokens, prompt_len) << what;
          EXPECT_EQ(choice.tokens, Alone(setup, Prompt(prompt_len), 40 + c))
              << what << ": choice " << c << " differs from a single request seeded " << 40 + c;
        }
        EXPECT_NE(done[K("r", 0)].tokens, done[K("r", 1)].tokens) << what;
        EXPECT_NE(done[K("r", 1)].tokens, done[K("r", 2)].tokens) << what;
        EXPECT_EQ(engine.stats().block_copies, prompt_len % 4 == 0 ? 0 : 2) << what;
        EXPECT_EQ(engine.scheduler().block_manager().num_used_blocks(), 0) << what;

        // The same seed again: the same three choices.
        auto again = MakeTiny(setup);
        ASSERT_TRUE(again->engine->AddRequest(request).ok());
        EXPECT_EQ(Tokens(RunToCompletion(*again->engine)), Tokens(done)) << what;
      }
    }
  }
}

TEST(EngineForkTest, OneN4RequestCostsOnePrefillAndDecodesAsOneBatch) {
  auto replica = MakeTiny({});
  Engine& engine = *replica->engine;
  const int prompt_len = 21;
  ASSERT_TRUE(engine.AddRequest(Sampled("r", Prompt(prompt_len), 4, 1, /*max_tokens=*/9)).ok());
  Done done = RunToCompletion(engine);
  const EngineStats& st = engine.stats();
  EXPECT_EQ(st.prompt_tokens_computed, prompt_len);  // not 4x
  EXPECT_EQ(st.forks, 3);
  EXPECT_EQ(st.steps, 9);            // one prefill (4 samples) + 8 decodes
  EXPECT_EQ(st.decode_steps, 8);     // every other step decoded ...
  EXPECT_EQ(st.decode_seqs, 8 * 4);  // ... all 4 choices at once
  EXPECT_EQ(st.max_seqs_per_step, 4);
  EXPECT_EQ(st.tokens_generated, 4 * 9);
  EXPECT_EQ(st.block_copies, 3);  // 21 % 4 != 0: the shared tail, copied for 3 of 4
  for (int c = 0; c < 4; ++c) EXPECT_EQ(done[K("r", c)].tokens.size(), 9u);
}

TEST(EngineForkTest, GreedyChoicesAreIdentical) {
  auto replica = MakeTiny({});
  EngineRequest r = Sampled("g", Prompt(10), 2, std::nullopt);
  r.params.temperature = 0.0f;
  ASSERT_TRUE(replica->engine->AddRequest(std::move(r)).ok());
  Done done = RunToCompletion(*replica->engine);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[K("g", 0)].tokens, done[K("g", 1)].tokens);
  EXPECT_EQ(done[K("g", 0)].tokens.size(), 12u);
}

TEST(EngineForkTest, UnseededChoicesDiffer) {
  auto replica = MakeTiny({});
  ASSERT_TRUE(replica->engine->AddRequest(Sampled("u", Prompt(10), 3, std::nullopt)).ok());
  Done done = RunToCompletion(*replica->engine);
  EXPECT_NE(done[K("u", 0)].tokens, done[K("u", 1)].tokens);
  EXPECT_NE(done[K("u", 0)].tokens, done[K("u", 2)].tokens);
}

TEST(EngineForkTest, PreemptedChoicesStillMatchTheirSingleRequests) {
  // 6 requests of n = 3 over 10 + 24 tokens (9 blocks of 4 each per choice)
  // in a pool of 40 blocks: choices get preempted and recomputed.
  const TinySetup tight{.num_blocks = 40, .max_num_seqs = 12};
  auto replica = MakeTiny(tight);
  Engine& engine = *replica->engine;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(engine
                    .AddRequest(Sampled("p" + std::to_string(i), Prompt(10, i), 3, 100 * i,
                                        /*max_tokens=*/24))
                    .ok());
  }
  Done done = RunToCompletion(engine);
  EXPECT_GT(engine.scheduler().stats().num_preemptions, 0) << "the pool was meant to be tight";
  for (int i = 0; i < 6; i += 5) {  // two of them, to keep the test short
    for (int c = 0; c < 3; ++c) {
      auto alone = MakeTiny({});
      ASSERT_TRUE(alone->engine->AddRequest(Sampled("a", Prompt(10, i), 1, 100 * i + c, 24)).ok());
      EXPECT_EQ((done[K("p" + std::to_string(i), c)].tokens),
                (RunToCompletion(*alone->engine)[K("a", 0)].tokens))
          << "request " << i << " choice " << c;
    }
  }
  EXPECT_EQ(engine.scheduler().block_manager().num_used_blocks(), 0);
}

TEST(EngineForkTest, AbortMidwayEndsEveryChoiceAndFreesEveryBlock) {
  auto replica = MakeTiny({});
  Engine& engine = *replica->engine;
  const int baseline = engine.scheduler().block_manager().num_used_blocks();
  ASSERT_TRUE(engine.AddRequest(Sampled("r", Prompt(10), 4, 5, /*max_tokens=*/50)).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine.Step().ok());
  EXPECT_EQ(engine.scheduler().num_running(), 4);
  ASSERT_TRUE(engine.Abort("r"));
  auto outputs = engine.Step();
  ASSERT_TRUE(outputs.ok());
  ASSERT_EQ(outputs->size(), 4u);
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ((*outputs)[c].index, c);
    EXPECT_EQ((*outputs)[c].finish_reason, FinishReason::kAbort);
    EXPECT_EQ((*outputs)[c].completion_tokens, 3);
  }
  EXPECT_FALSE(engine.HasUnfinished());
  const BlockManager& bm = engine.scheduler().block_manager();
  EXPECT_TRUE(engine.scheduler().CheckInvariants().ok());
  EXPECT_EQ(bm.num_used_blocks(), baseline);
  for (int32_t b = 0; b < bm.num_blocks(); ++b) EXPECT_EQ(bm.ref_count(b), 0);
}

TEST(EngineForkTest, EveryChoiceGetsItsLogprobs) {
  auto replica = MakeTiny({});
  EngineRequest r = Sampled("l", Prompt(9), 3, 9, /*max_tokens=*/4);
  r.params.logprobs = 2;
  ASSERT_TRUE(replica->engine->AddRequest(std::move(r)).ok());
  for (int guard = 0; replica->engine->HasUnfinished() && guard < 100; ++guard) {
    auto outputs = replica->engine->Step();
    ASSERT_TRUE(outputs.ok());
    for (const RequestOutput& o : *outputs) {
      ASSERT_EQ(o.logprobs.size(), o.new_tokens.size());
      if (!o.logprobs.empty()) {
        EXPECT_EQ(o.logprobs[0].token, o.new_tokens[0]) << o.index;
      }
    }
  }
}

TEST(EngineForkTest, RejectsNOutsideOneToMaxN) {
  auto replica = MakeTiny({.max_num_seqs = 8});
  EXPECT_EQ(replica->limits.max_n, 8);
  for (const int n : {0, 9}) {
    const absl::Status s = replica->engine->AddRequest(Sampled("x", Prompt(4), n, 1));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(s.message(), HasSubstr("sampling.n must be in [1, 8]")) << s;
  }
  EXPECT_TRUE(replica->engine->AddRequest(Sampled("x", Prompt(4), 8, 1)).ok());
}

}  // namespace
}  // namespace tessera
