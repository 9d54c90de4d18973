// Real text through tessera-router and tessera-worker over gRPC:
// - stories260K (its own tokenizer.json): a text prompt is tokenized by the
//   router exactly as llama2.c's run.c tokenizes it, and the streamed text of
//   the greedy continuation is exactly what run.c printed
//   (text_reference.jsonl);
// - a Qwen3-shaped random model with the real Qwen3 tokenizer: chat requests
//   rendered by the router with Qwen3's chat template arrive at the worker as
//   exactly the ids Hugging Face's libraries produce (chat_golden.jsonl);
// - a chat template given with --chat-template, and a worker whose template
//   differs from the cluster's refused by the router, naming the tokenizer.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/testing/tokenizers.h"

namespace tessera::testing {
namespace {

using tessera::v1::GenerateRequest;
using tessera::v1::GenerateResponse;

// One Llm.Generate call through the router, to its end.
struct TextCall {
  grpc::Status status;
  std::vector<int32_t> prompt_ids;  // as the worker received them
  std::vector<int32_t> tokens;
  std::string text;
  tessera::v1::FinishReason finish = tessera::v1::FINISH_REASON_UNSPECIFIED;
};

void Prepare(const RouterCluster& cluster, grpc::ClientContext* ctx) {
  const CallOptions options = cluster.ClientCallOptions();
  ctx->set_deadline(std::chrono::system_clock::now() + options.deadline);
  if (!options.api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + options.api_key);
}

TextCall Call(const RouterCluster& cluster, const GenerateRequest& request) {
  TextCall out;
  grpc::ClientContext ctx;
  Prepare(cluster, &ctx);
  auto reader = cluster.llm().Generate(&ctx, request);
  GenerateResponse part;
  while (reader->Read(&part)) {
    out.prompt_ids.insert(out.prompt_ids.end(), part.prompt_token_ids().begin(),
                          part.prompt_token_ids().end());
    out.tokens.insert(out.tokens.end(), part.token_ids().begin(), part.token_ids().end());
    out.text += part.text();
    if (part.finish_reason() != tessera::v1::FINISH_REASON_UNSPECIFIED) {
      out.finish = part.finish_reason();
    }
  }
  out.status = reader->Finish();
  return out;
}

GenerateRequest Greedy(int max_tokens) {
  GenerateRequest r;
  r.mutable_sampling()->set_max_tokens(max_tokens);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_ignore_eos(true);
  r.set_return_text(true);
  r.set_return_prompt_token_ids(true);
  return r;
}

std::unique_ptr<RouterCluster> StartOne(std::vector<std::string> worker_args) {
  RouterClusterOptions options;
  options.replicas = 1;
  options.worker_args = std::move(worker_args);
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  EXPECT_NE(cluster, nullptr) << error;
  return cluster;
}

std::string DataDir() { return std::string(TESSERA_SOURCE_DIR) + "/tests/data"; }

TEST(RouterTextTest, StoriesTextPromptGivesRunCText) {
  TESSERA_REQUIRE_STORIES();
  auto cluster = StartOne(StoriesWorkerArgs());
  ASSERT_NE(cluster, nullptr);
  const auto refs = ReadJsonl(StoriesDir() + "/text_reference.jsonl");
  ASSERT_FALSE(refs.empty());
  for (const nlohmann::json& ref : refs) {
    const std::string prompt = ref.at("prompt_text");
    SCOPED_TRACE(prompt);
    const auto generated = ref.at("generated").get<std::vector<int32_t>>();
    GenerateRequest request = Greedy(static_cast<int>(generated.size()));
    request.set_text(prompt);
    const TextCall call = Call(*cluster, request);
    ASSERT_TRUE(call.status.ok()) << Describe(call.status);
    EXPECT_EQ(call.prompt_ids, ref.at("prompt").get<std::vector<int32_t>>());
    EXPECT_EQ(call.tokens, generated);
    EXPECT_EQ(call.text, ref.at("generated_text").get<std::string>());
  }
  // The router's Tokenize agrees with run.c's encoder (with BOS).
  grpc::ClientContext ctx;
  Prepare(*cluster, &ctx);
  tessera::v1::TokenizeRequest tr;
  tr.set_text(refs[0].at("prompt_text"));
  tr.set_add_special_tokens(true);
  tessera::v1::TokenizeResponse tokens;
  ASSERT_TRUE(cluster->llm().Tokenize(&ctx, tr, &tokens).ok());
  EXPECT_EQ(std::vector<int32_t>(tokens.token_ids().begin(), tokens.token_ids().end()),
            refs[0].at("prompt").get<std::vector<int32_t>>());
}

TEST(RouterTextTest, Qwen3ChatReachesTheWorkerAsGoldenIds) {
  TESSERA_REQUIRE_TOKENIZER("qwen3");
  auto cluster =
      StartOne({"--dummy", "qwen3-tiny", "--tokenizer", TokenizerDir("qwen3"), "--device", "cpu",
                "--threads", "1", "--num-kv-blocks", "512", "--log-level", WorkerLogLevel()});
  ASSERT_NE(cluster, nullptr);
  const auto golden = ReadJsonl(TokenizerDir("qwen3") + "/chat_golden.jsonl");
  ASSERT_FALSE(golden.empty());
  int checked = 0;
  for (const nlohmann::json& g : golden) {
    SCOPED_TRACE(g.dump().substr(0, 300));
    GenerateRequest request = Greedy(2);
    tessera::v1::ChatPrompt* chat = request.mutable_chat();
    for (const nlohmann::json& m : g.at("messages")) {
      tessera::v1::ChatMessage* msg = chat->add_messages();
      msg->set_role(m.at("role"));
      msg->set_content(m.at("content"));
      if (m.contains("reasoning_content")) msg->set_reasoning_content(m.at("reasoning_content"));
    }
    chat->set_add_generation_prompt(g.at("add_generation_prompt"));
    if (g.contains("extra") && !g.at("extra").empty()) {
      chat->set_chat_template_kwargs_json(g.at("extra").dump());
    }
    const TextCall call = Call(*cluster, request);
    if (g.at("rendered").is_null()) {
      EXPECT_EQ(call.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(call.status.error_message(), g.at("error").get<std::string>());
      continue;
    }
    ASSERT_TRUE(call.status.ok()) << Describe(call.status);
    EXPECT_EQ(call.prompt_ids, g.at("ids").get<std::vector<int32_t>>());
    EXPECT_EQ(call.tokens.size(), 2u);
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST(RouterTextTest, ChatTemplateFlagAndMismatchedWorkerRefused) {
  TESSERA_REQUIRE_STORIES();
  const std::string tmpl = DataDir() + "/stories260k_chat.jinja";
  auto cluster = StartOne(StoriesWorkerArgs({"--chat-template", tmpl}));
  ASSERT_NE(cluster, nullptr);

  GenerateRequest request = Greedy(16);
  tessera::v1::ChatMessage* msg = request.mutable_chat()->add_messages();
  msg->set_role("user");
  msg->set_content("Tell me a story about a cat.");
  const TextCall call = Call(*cluster, request);
  ASSERT_TRUE(call.status.ok()) << Describe(call.status);
  EXPECT_EQ(call.tokens.size(), 16u);
  EXPECT_FALSE(call.text.empty());
  // The prompt is the template's rendering, tokenized without extra BOS.
  ASSERT_FALSE(call.prompt_ids.empty());

  // A replica of the same model with another template: the router refuses
  // it, naming the tokenizer.
  const std::string other = (std::filesystem::temp_directory_path() /
                             ("tessera_other_" + std::to_string(getpid()) + ".jinja"))
                                .string();
  {
    std::ofstream f(other);
    f << "{% for m in messages %}{{ m['content'] }}\n{% endfor %}";
  }
  std::string error;
  const int extra = cluster->AddReplica({"--chat-template", other}, &error);
  ASSERT_GE(extra, 0) << error;
  const CliResult added = cluster->AdminCli({"add", cluster->worker_address(extra)});
  ASSERT_EQ(added.exit_code, 0) << added.Describe();
  std::string last;
  EXPECT_TRUE(cluster->WaitWorker(
      cluster->worker_address(extra),
      [](const tessera::v1::WorkerInfo& w) {
        return w.state() == tessera::v1::WorkerInfo::STATE_UNHEALTHY &&
               w.last_error().find("tokenizer") != std::string::npos;
      },
      std::chrono::seconds(20), &last))
      << last;
  std::filesystem::remove(other);
}

}  // namespace
}  // namespace tessera::testing
