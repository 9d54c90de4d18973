// Every line of ../shared/tokenizers/{qwen3,mistral}/chat_golden.jsonl,
// rendered with the model's chat template as transformers renders it: the
// rendered text matches exactly, and a template that raises gives
// INVALID_ARGUMENT with exactly the golden error message. (The `ids` field is
// checked where the tokenizer is available.)
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/jinja/chat_template.h"
#include "gtest/gtest.h"

namespace tessera::jinja {
namespace {

const std::string kTokenizers = std::string(TESSERA_SHARED_DIR) + "/tokenizers";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Model {
  std::string name;
  std::string template_file;  // empty: chat_template of tokenizer_config.json
};

class ChatGoldenTest : public ::testing::TestWithParam<Model> {};

TEST_P(ChatGoldenTest, EveryLineMatches) {
  const Model& model = GetParam();
  const std::string dir = kTokenizers + "/" + model.name;
  if (!std::filesystem::exists(dir + "/chat_golden.jsonl")) {
    GTEST_SKIP() << "no " << dir << "/chat_golden.jsonl (../shared absent)";
  }
  const nlohmann::json config = nlohmann::json::parse(ReadFile(dir + "/tokenizer_config.json"));
  const std::string source = model.template_file.empty()
                                 ? config.at("chat_template").get<std::string>()
                                 : ReadFile(dir + "/" + model.template_file);
  auto tmpl = ChatTemplate::Parse(source);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const nlohmann::json special = SpecialTokensFromConfig(config);

  std::ifstream golden(dir + "/chat_golden.jsonl");
  std::string line;
  int lines = 0;
  int errors = 0;
  while (std::getline(golden, line)) {
    if (line.empty()) continue;
    ++lines;
    const nlohmann::ordered_json g = nlohmann::ordered_json::parse(line);
    SCOPED_TRACE("line " + std::to_string(lines) + ": " + g.at("messages").dump());
    auto rendered = tmpl->RenderChat(g.at("messages"), g.at("add_generation_prompt").get<bool>(),
                                     g.at("extra"), nlohmann::ordered_json(special));
    if (g.at("rendered").is_null()) {
      ++errors;
      ASSERT_FALSE(rendered.ok()) << "rendered " << *rendered;
      EXPECT_EQ(rendered.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(rendered.status().message(), g.at("error").get<std::string>());
    } else {
      ASSERT_TRUE(rendered.ok()) << rendered.status();
      EXPECT_EQ(*rendered, g.at("rendered").get<std::string>());
    }
  }
  EXPECT_GT(lines, 10);
  if (model.name == "mistral") {
    EXPECT_GT(errors, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ChatGoldenTest,
                         ::testing::Values(Model{"qwen3", ""},
                                           Model{"mistral", "chat_template.jinja"}),
                         [](const auto& info) { return info.param.name; });

TEST(SpecialTokensFromConfigTest, TakesStringsAndAddedTokenContent) {
  const nlohmann::json config = nlohmann::json::parse(R"({
    "bos_token": "<s>", "eos_token": {"__type": "AddedToken", "content": "</s>"},
    "pad_token": null, "unk_token": 5, "chat_template": "x"})");
  const nlohmann::json special = SpecialTokensFromConfig(config);
  EXPECT_EQ(special, nlohmann::json::parse(R"({"bos_token": "<s>", "eos_token": "</s>"})"));
}

}  // namespace
}  // namespace tessera::jinja
