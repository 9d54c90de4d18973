// tessera-generate under mpirun reproduces llama2.c's greedy stories260K
// continuations (at least each prompt's safe_prefix tokens) at TP=1, 2 and 4,
// forks parallel samples (--n) the same way on every rank, and refuses a
// model it cannot split with a clear message.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/stories.h"
#include "tests/testing/subprocess.h"

namespace tessera {
namespace {

std::string Mpirun(int ranks) {
  return std::string(TESSERA_MPIEXEC) + " " + TESSERA_MPIRUN_FLAGS_STR + " -np " +
         std::to_string(ranks) + " ";
}

std::string GenerateBinary() {
  return std::string(TESSERA_BINARY_DIR) + "/worker/tessera-generate";
}

class GenerateTpTest : public ::testing::TestWithParam<int> {};

TEST_P(GenerateTpTest, ReproducesGreedyReference) {
  TESSERA_REQUIRE_STORIES();
  const int tp = GetParam();
  const auto refs = testing::LoadGreedyReference();
  const std::string prompts =
      (std::filesystem::temp_directory_path() /
       ("tessera_prompts_" + std::to_string(tp) + "_" + std::to_string(getpid()) + ".jsonl"))
          .string();
  {
    std::ofstream f(prompts);
    for (const auto& r : refs) {
      f << nlohmann::json{{"prompt_token_ids", r.prompt}, {"max_tokens", 64}, {"ignore_eos", true}}
               .dump()
        << "\n";
    }
  }
  const auto result = testing::RunCommand(
      Mpirun(tp) + GenerateBinary() + " --model " + testing::StoriesDir() + " --prompts " +
          prompts +
          " --json --temperature 0 --device cpu --threads 1 --num-kv-blocks 256 --log-level warn",
      240);
  std::filesystem::remove(prompts);
  ASSERT_EQ(result.exit_code, 0) << result.out;
  std::istringstream lines(result.out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    ASSERT_LT(i, refs.size()) << "more outputs than prompts: " << line;
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("prompt_token_ids").get<std::vector<int32_t>>(), refs[i].prompt);
    const auto out = j.at("output_token_ids").get<std::vector<int32_t>>();
    ASSERT_EQ(out.size(), 64u) << line;
    for (int k = 0; k < refs[i].safe_prefix; ++k) {
      ASSERT_EQ(out[k], refs[i].generated[k])
          << "TP=" << tp << " prompt " << i << ": first difference at generated token " << k;
    }
    EXPECT_EQ(j.at("finish_reason"), "length");
    EXPECT_EQ(j.at("usage").at("completion_tokens"), 64);
    ++i;
  }
  EXPECT_EQ(i, refs.size()) << result.out;
}

// Text in, text out through the model's own tokenizer.json: the text of each
// greedy continuation is exactly what llama2.c's run.c printed.
TEST_P(GenerateTpTest, ReproducesTextReference) {
  TESSERA_REQUIRE_STORIES();
  const int tp = GetParam();
  std::vector<nlohmann::json> refs;
  {
    std::ifstream in(testing::StoriesDir() + "/text_reference.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) refs.push_back(nlohmann::json::parse(line));
    }
  }
  ASSERT_FALSE(refs.empty());
  const std::string common = " --model " + testing::StoriesDir() +
                             " --max-tokens 64 --temperature 0 --ignore-eos --device cpu "
                             "--threads 1 --num-kv-blocks 256 --log-level warn";
  // One prompt on the command line: stdout is the text and a newline.
  const std::string first = refs[0].at("prompt_text");
  ASSERT_EQ(first.find('\''), std::string::npos);
  const auto plain = testing::RunCommand(
      Mpirun(tp) + GenerateBinary() + " --prompt '" + first + "'" + common, 240);
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(plain.out, refs[0].at("generated_text").get<std::string>() + "\n");

  // All prompts in one batch (--prompts, text prompts, --json).
  const std::string prompts =
      (std::filesystem::temp_directory_path() /
       ("tessera_text_prompts_" + std::to_string(tp) + "_" + std::to_string(getpid()) + ".jsonl"))
          .string();
  {
    std::ofstream f(prompts);
    for (const auto& r : refs) f << nlohmann::json{{"prompt", r.at("prompt_text")}}.dump() << "\n";
  }
  const auto batch = testing::RunCommand(
      Mpirun(tp) + GenerateBinary() + " --prompts " + prompts + " --json" + common, 240);
  std::filesystem::remove(prompts);
  ASSERT_EQ(batch.exit_code, 0) << batch.out;
  std::istringstream lines(batch.out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    ASSERT_LT(i, refs.size()) << line;
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("prompt_token_ids"), refs[i].at("prompt"));
    EXPECT_EQ(j.at("output_token_ids"), refs[i].at("generated"));
    EXPECT_EQ(j.at("output_text"), refs[i].at("generated_text")) << "TP=" << tp << " prompt " << i;
    ++i;
  }
  EXPECT_EQ(i, refs.size()) << batch.out;
}

INSTANTIATE_TEST_SUITE_P(TensorParallel, GenerateTpTest, ::testing::Values(1, 2, 4),
                         [](const auto& info) { return "TP" + std::to_string(info.param); });

// The `choices` of one --json line (n > 1), as token lists.
std::vector<std::vector<int32_t>> Choices(const std::string& out) {
  std::vector<std::vector<int32_t>> choices;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("choices")) {
      choices.push_back(j.at("output_token_ids").get<std::vector<int32_t>>());
      continue;
    }
    for (const auto& c : j.at("choices")) {
      choices.push_back(c.at("output_token_ids").get<std::vector<int32_t>>());
    }
  }
  return choices;
}

// n = 3 at TP=2: the prompt (7 tokens, blocks of 4: the shared last block is
// copied on write) is forked on every rank, so each choice i equals the n = 1
// request seeded 11 + i at TP=2, and the choices equal TP=1's.
TEST(GenerateParallelSamplingTest, ForkedChoicesAtTp2MatchSingleRequestsAndTp1) {
  TESSERA_REQUIRE_STORIES();
  const std::string common = " --model " + testing::StoriesDir() +
                             " --prompt-ids '1 300 301 302 303 304 305' --max-tokens 24"
                             " --temperature 1 --ignore-eos --json --device cpu --threads 1"
                             " --block-size 4 --num-kv-blocks 256 --log-level warn";
  auto run = [&](int tp, int n, int seed) {
    const auto r = testing::RunCommand(Mpirun(tp) + GenerateBinary() + common + " --n " +
                                           std::to_string(n) + " --seed " + std::to_string(seed),
                                       240);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return Choices(r.out);
  };
  const auto tp2 = run(2, 3, 11);
  ASSERT_EQ(tp2.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    ASSERT_EQ(tp2[c].size(), 24u);
    const auto alone = run(2, 1, 11 + c);
    ASSERT_EQ(alone.size(), 1u);
    EXPECT_EQ(tp2[c], alone[0]) << "TP=2 choice " << c << " vs. n=1 seeded " << 11 + c;
  }
  EXPECT_NE(tp2[0], tp2[1]);
  EXPECT_EQ(run(1, 3, 11), tp2) << "TP=1 vs. TP=2";
}

TEST(GenerateErrorsTest, UnsplittableHeadCount) {
  TESSERA_REQUIRE_STORIES();
  // stories260K has 4 KV heads: 8 ranks cannot each hold one.
  const auto result =
      testing::RunCommand(Mpirun(8) + GenerateBinary() + " --model " + testing::StoriesDir() +
                              " --prompt-ids 1 --threads 1 --num-kv-blocks 16 2>&1",
                          120);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(
      result.out.find("num_key_value_heads (4) must be at least the tensor-parallel size (8)"),
      std::string::npos)
      << result.out;
}

TEST(GenerateErrorsTest, MissingModelDirectory) {
  const auto result =
      testing::RunCommand(GenerateBinary() + " --model /nonexistent/model --prompt-ids 1 2>&1", 60);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.out.find("/nonexistent/model"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace tessera
