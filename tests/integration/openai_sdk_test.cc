// The OpenAI-compatible HTTP API of tessera-router, driven by the official
// `openai` npm SDK (tests/clients/openai_client.cjs, installed with
// deploy/install-test-clients.sh) against real stories260K workers and a
// Qwen3-shaped worker with the real Qwen3 tokenizer:
//   - completions, greedy, "Once upon a time" etc.: exactly run.c's text
//     (text_reference.jsonl), streamed and not, with usage;
//   - chat through a chat template (--chat-template, and Qwen3's own):
//     the prompt the worker saw is the template's rendering, the streamed
//     and unstreamed answers agree with the gRPC path's;
//   - n = 3 with a seed: three distinct choices, the same again with the
//     same seed; include_usage; logprobs;
//   - 400 / 401 / 404 raised as the SDK's typed errors, naming the field;
//   - the SDK's own retries on 503 (no worker) and 429 (admission full).
// Without node or the SDK the tests skip (loudly), except under CI=true,
// where they fail: CI must run them.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/tokenizers.h"

namespace tessera::testing {
namespace {

using nlohmann::json;

std::string ClientsDir() {
  const char* env = std::getenv("TESSERA_TEST_CLIENTS");
  return env != nullptr && env[0] != '\0' ? env : std::string(TESSERA_BINARY_DIR) + "/test-clients";
}

// Skips (or fails under CI) without node and the openai package.
#define TESSERA_REQUIRE_OPENAI_SDK()                                                            \
  do {                                                                                          \
    if (!std::filesystem::exists(ClientsDir() + "/node_modules/openai/package.json") ||         \
        RunCommand("node --version > /dev/null 2>&1 && echo yes", 10).out.find("yes") ==        \
            std::string::npos) {                                                                \
      const char* ci = std::getenv("CI");                                                      \
      if (ci != nullptr && std::string(ci) == "true") {                                         \
        FAIL() << "CI=true but the openai SDK is not installed in " << ClientsDir()             \
               << " (bash deploy/install-test-clients.sh " << ClientsDir() << ")";              \
      }                                                                                         \
      GTEST_SKIP() << "SKIPPED LOUDLY: no node or openai SDK in " << ClientsDir()               \
                   << "; run: bash deploy/install-test-clients.sh " << ClientsDir();            \
    }                                                                                           \
  } while (0)

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// One SDK call (see openai_client.cjs); the JSON it printed.
json Sdk(const RouterCluster& cluster, const std::string& op, json params = json::object(),
         const std::string& api_key = "") {
  if (!api_key.empty()) params["_client"]["apiKey"] = api_key;
  const std::string command = "env NODE_PATH=" + ShellQuote(ClientsDir() + "/node_modules") +
                              " node " + ShellQuote(std::string(TESSERA_SOURCE_DIR) +
                                                    "/tests/clients/openai_client.cjs") +
                              " " + ShellQuote("http://" + cluster.http_address() + "/v1") + " " +
                              op + " " + ShellQuote(params.dump());
  const CommandResult r = RunCommand(command, 120);
  EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.out;
  try {
    return json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON from the SDK script: " << e.what() << "\n" << r.out;
    return json::object();
  }
}

std::unique_ptr<RouterCluster> StartOne(std::vector<std::string> worker_args,
                                        RouterOptions router = {}) {
  RouterClusterOptions options;
  options.replicas = 1;
  options.worker_args = std::move(worker_args);
  options.router = std::move(router);
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  EXPECT_NE(cluster, nullptr) << error;
  return cluster;
}

std::string DataDir() { return std::string(TESSERA_SOURCE_DIR) + "/tests/data"; }

constexpr const char* kKey = "sk-tessera-test";

class StoriesSdkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveStories()) return;
    RouterOptions router;
    router.api_key = kKey;
    cluster_ = StartOne(StoriesWorkerArgs({"--chat-template", DataDir() + "/stories260k_chat.jinja"}),
                        router)
                   .release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    TESSERA_REQUIRE_STORIES();
    TESSERA_REQUIRE_OPENAI_SDK();
    ASSERT_NE(cluster_, nullptr);
  }
  json Call(const std::string& op, json params) { return Sdk(*cluster_, op, std::move(params), kKey); }

  static RouterCluster* cluster_;
};
RouterCluster* StoriesSdkTest::cluster_ = nullptr;

TEST_F(StoriesSdkTest, CompletionsGiveRunCTextStreamedAndNot) {
  const auto refs = ReadJsonl(StoriesDir() + "/text_reference.jsonl");
  ASSERT_FALSE(refs.empty());
  for (const json& ref : refs) {
    const std::string prompt = ref.at("prompt_text");
    const std::string expected = ref.at("generated_text");
    const int max_tokens = static_cast<int>(ref.at("generated").size());
    SCOPED_TRACE(prompt);
    json params = {{"model", "stories260K"}, {"prompt", prompt},       {"max_tokens", max_tokens},
                   {"temperature", 0},       {"ignore_eos", true}};
    const json plain = Call("completion", params);
    ASSERT_TRUE(plain.at("ok")) << plain.dump();
    const json& r = plain.at("result");
    EXPECT_EQ(r.at("object"), "text_completion");
    EXPECT_TRUE(r.at("id").get<std::string>().starts_with("cmpl-")) << r.at("id");
    ASSERT_EQ(r.at("choices").size(), 1u);
    EXPECT_EQ(r.at("choices")[0].at("text"), expected);
    EXPECT_EQ(r.at("choices")[0].at("finish_reason"), "length");
    EXPECT_EQ(r.at("usage").at("completion_tokens"), max_tokens);
    EXPECT_EQ(r.at("usage").at("prompt_tokens"), ref.at("prompt").size());
    EXPECT_EQ(r.at("usage").at("total_tokens"), max_tokens + ref.at("prompt").size());

    params["stream"] = true;
    params["stream_options"] = {{"include_usage", true}};
    const json streamed = Call("completion", params);
    ASSERT_TRUE(streamed.at("ok")) << streamed.dump();
    const json& s = streamed.at("result");
    EXPECT_EQ(s.at("text").at("0"), expected);
    EXPECT_EQ(s.at("finish").at("0"), "length");
    // The last chunk carries the usage and no choices.
    const json& last = s.at("chunks").back();
    EXPECT_TRUE(last.at("choices").empty()) << last.dump();
    EXPECT_EQ(last.at("usage").at("completion_tokens"), max_tokens);
    EXPECT_EQ(last.at("usage").at("prompt_tokens"), ref.at("prompt").size());
  }
}

TEST_F(StoriesSdkTest, ChatThroughTheTemplateStreamedAndNot) {
  const json messages = json::array(
      {{{"role", "system"}, {"content", "You tell short stories."}},
       {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "A story about a cat."}}})}}});
  json params = {{"model", "stories260K"}, {"messages", messages}, {"max_tokens", 24},
                 {"temperature", 0}};
  const json plain = Call("chat", params);
  ASSERT_TRUE(plain.at("ok")) << plain.dump();
  const json& r = plain.at("result");
  EXPECT_EQ(r.at("object"), "chat.completion");
  EXPECT_TRUE(r.at("id").get<std::string>().starts_with("chatcmpl-")) << r.at("id");
  ASSERT_EQ(r.at("choices").size(), 1u);
  const json& message = r.at("choices")[0].at("message");
  EXPECT_EQ(message.at("role"), "assistant");
  const std::string content = message.at("content");
  EXPECT_FALSE(content.empty());
  // The same conversation through gRPC (Llm.Generate with a chat prompt):
  // the same rendering, the same prompt, the same greedy answer.
  tessera::v1::GenerateRequest grpc_request;
  grpc_request.set_return_text(true);
  grpc_request.set_return_prompt_token_ids(true);
  grpc_request.mutable_sampling()->set_max_tokens(24);
  grpc_request.mutable_sampling()->set_temperature(0);
  auto* system = grpc_request.mutable_chat()->add_messages();
  system->set_role("system");
  system->set_content("You tell short stories.");
  auto* user = grpc_request.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_content("A story about a cat.");
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kKey);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = cluster_->llm().Generate(&ctx, grpc_request);
  tessera::v1::GenerateResponse part;
  std::string grpc_text;
  size_t grpc_prompt_tokens = 0;
  while (reader->Read(&part)) {
    grpc_text += part.text();
    grpc_prompt_tokens += part.prompt_token_ids_size();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(content, grpc_text);
  EXPECT_EQ(r.at("usage").at("prompt_tokens"), grpc_prompt_tokens);

  params["stream"] = true;
  const json streamed = Call("chat", params);
  ASSERT_TRUE(streamed.at("ok")) << streamed.dump();
  const json& chunks = streamed.at("result").at("chunks");
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks[0].at("object"), "chat.completion.chunk");
  EXPECT_EQ(chunks[0].at("choices")[0].at("delta").at("role"), "assistant");
  EXPECT_EQ(streamed.at("result").at("text").at("0"), content);
  EXPECT_EQ(streamed.at("result").at("finish").at("0"),
            r.at("choices")[0].at("finish_reason"));
}

TEST_F(StoriesSdkTest, ParallelSamplingWithASeedIsDistinctAndReproducible) {
  json params = {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"max_tokens", 24},
                 {"temperature", 1.0},     {"n", 3},                       {"seed", 1234},
                 {"ignore_eos", true}};
  const json a = Call("completion", params);
  ASSERT_TRUE(a.at("ok")) << a.dump();
  const json& choices = a.at("result").at("choices");
  ASSERT_EQ(choices.size(), 3u);
  std::set<std::string> texts;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(choices[i].at("index"), i);
    texts.insert(choices[i].at("text").get<std::string>());
  }
  EXPECT_EQ(texts.size(), 3u) << choices.dump();
  // Usage: the prompt once, the completions of all three.
  const json& usage = a.at("result").at("usage");
  EXPECT_EQ(usage.at("completion_tokens"), 3 * 24);
  EXPECT_EQ(usage.at("prompt_tokens"), 5);  // BOS + "Once upon a time"

  const json b = Call("completion", params);
  ASSERT_TRUE(b.at("ok")) << b.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b.at("result").at("choices")[i].at("text"), choices[i].at("text")) << i;
  }
  // The same, streamed: each choice's chunks add up to its text.
  params["stream"] = true;
  const json s = Call("completion", params);
  ASSERT_TRUE(s.at("ok")) << s.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s.at("result").at("text").at(std::to_string(i)), choices[i].at("text")) << i;
  }
}

TEST_F(StoriesSdkTest, Logprobs) {
  const json chat = Call("chat", {{"model", "stories260K"},
                                  {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                  {"max_tokens", 6},
                                  {"temperature", 0},
                                  {"ignore_eos", true},
                                  {"logprobs", true},
                                  {"top_logprobs", 3}});
  ASSERT_TRUE(chat.at("ok")) << chat.dump();
  const json& content = chat.at("result").at("choices")[0].at("logprobs").at("content");
  ASSERT_EQ(content.size(), 6u);
  std::string joined;
  for (const json& t : content) {
    EXPECT_LE(t.at("logprob").get<double>(), 0.0);
    ASSERT_EQ(t.at("top_logprobs").size(), 3u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t.at("top_logprobs")[0].at("token"), t.at("token"));
    joined += t.at("token").get<std::string>();
  }
  EXPECT_FALSE(joined.empty());

  const json completion = Call("completion", {{"model", "stories260K"},
                                              {"prompt", "Once upon a time"},
                                              {"max_tokens", 5},
                                              {"temperature", 0},
                                              {"ignore_eos", true},
                                              {"logprobs", 2}});
  ASSERT_TRUE(completion.at("ok")) << completion.dump();
  const json& lp = completion.at("result").at("choices")[0].at("logprobs");
  EXPECT_EQ(lp.at("tokens").size(), 5u);
  EXPECT_EQ(lp.at("token_logprobs").size(), 5u);
  ASSERT_EQ(lp.at("top_logprobs").size(), 5u);
  EXPECT_EQ(lp.at("top_logprobs")[0].size(), 2u);
}

TEST_F(StoriesSdkTest, ErrorsAreTheSdksTypedErrors) {
  // 400: a value out of range, named.
  const json bad = Call("completion", {{"model", "stories260K"}, {"prompt", "x"}, {"temperature", -1}});
  ASSERT_FALSE(bad.at("ok")) << bad.dump();
  EXPECT_EQ(bad.at("error").at("class"), "BadRequestError") << bad.dump();
  EXPECT_EQ(bad.at("error").at("status"), 400);
  EXPECT_NE(bad.at("error").at("message").get<std::string>().find("temperature"), std::string::npos)
      << bad.dump();
  // 400: a known feature that is not served is refused, never dropped.
  const json tools = Call("chat", {{"model", "stories260K"},
                                   {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                   {"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}}});
  ASSERT_FALSE(tools.at("ok")) << tools.dump();
  EXPECT_EQ(tools.at("error").at("status"), 400);
  EXPECT_EQ(tools.at("error").at("param"), "tools") << tools.dump();
  // 400: a prompt longer than max_model_len.
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "cat ";
  const json too_long = Call("completion", {{"model", "stories260K"}, {"prompt", long_prompt}});
  ASSERT_FALSE(too_long.at("ok")) << too_long.dump();
  EXPECT_EQ(too_long.at("error").at("status"), 400);
  EXPECT_NE(too_long.at("error").at("message").get<std::string>().find("max_model_len"),
            std::string::npos);
  // 401: no key / a wrong key.
  const json unauthorized = Sdk(*cluster_, "models", json::object(), "sk-wrong");
  ASSERT_FALSE(unauthorized.at("ok"));
  EXPECT_EQ(unauthorized.at("error").at("class"), "AuthenticationError") << unauthorized.dump();
  EXPECT_EQ(unauthorized.at("error").at("status"), 401);
  // 404: a model that is not served.
  const json unknown = Call("completion", {{"model", "gpt-17"}, {"prompt", "x"}});
  ASSERT_FALSE(unknown.at("ok"));
  EXPECT_EQ(unknown.at("error").at("class"), "NotFoundError") << unknown.dump();
  EXPECT_NE(unknown.at("error").at("message").get<std::string>().find("gpt-17"), std::string::npos);
  // The model list names what is served.
  const json models = Call("models", json::object());
  ASSERT_TRUE(models.at("ok")) << models.dump();
  ASSERT_FALSE(models.at("result").at("data").empty());
  EXPECT_EQ(models.at("result").at("data")[0].at("object"), "model");
}

TEST(QwenSdkTest, ChatWithTheRealQwen3TemplateAndTokenizer) {
  TESSERA_REQUIRE_TOKENIZER("qwen3");
  TESSERA_REQUIRE_OPENAI_SDK();
  auto cluster =
      StartOne({"--dummy", "qwen3-tiny", "--tokenizer", TokenizerDir("qwen3"), "--device", "cpu",
                "--threads", "1", "--num-kv-blocks", "512", "--log-level", WorkerLogLevel()});
  ASSERT_NE(cluster, nullptr);
  const auto golden = ReadJsonl(TokenizerDir("qwen3") + "/chat_golden.jsonl");
  int checked = 0;
  for (const json& g : golden) {
    if (g.at("rendered").is_null() || !g.at("add_generation_prompt").get<bool>()) continue;
    json params = {{"model", "dummy-qwen3-tiny"}, {"messages", g.at("messages")}, {"max_tokens", 3},
                   {"temperature", 0},      {"ignore_eos", true}};
    if (g.contains("extra") && !g.at("extra").empty()) params["chat_template_kwargs"] = g.at("extra");
    SCOPED_TRACE(params.dump().substr(0, 300));
    const json r = Sdk(*cluster, "chat", params);
    ASSERT_TRUE(r.at("ok")) << r.dump();
    // The worker saw exactly Hugging Face's ids for this conversation.
    EXPECT_EQ(r.at("result").at("usage").at("prompt_tokens"), g.at("ids").size());
    EXPECT_EQ(r.at("result").at("usage").at("completion_tokens"), 3);
    if (++checked == 6) break;
  }
  EXPECT_GE(checked, 3);
}

TEST(RetrySdkTest, TheSdkRetries503WithoutWorkers) {
  TESSERA_REQUIRE_OPENAI_SDK();
  RouterClusterOptions options;
  options.replicas = 0;
  std::string error;
  auto cluster = RouterCluster::Start(options, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const json r = Sdk(*cluster, "completion",
                     {{"model", "m"}, {"prompt", "x"}, {"_client", {{"maxRetries", 2}}}});
  ASSERT_FALSE(r.at("ok")) << r.dump();
  EXPECT_EQ(r.at("error").at("status"), 503) << r.dump();
  EXPECT_EQ(r.at("error").at("class"), "InternalServerError") << r.dump();
  EXPECT_EQ(r.at("fetches"), 3) << "the SDK sends a 503'd call 3 times with maxRetries 2";
}

TEST(RetrySdkTest, TheSdkRetries429UntilAdmitted) {
  TESSERA_REQUIRE_STORIES();
  TESSERA_REQUIRE_OPENAI_SDK();
  RouterOptions router;
  router.extra_args = {"--max-concurrent-requests", "1", "--max-queued-requests", "0"};
  auto cluster = StartOne(StoriesWorkerArgs(), router);
  ASSERT_NE(cluster, nullptr);
  constexpr int kCalls = 6;
  const json r = Sdk(*cluster, "concurrent",
                     {{"count", kCalls},
                      {"kind", "completion"},
                      {"params",
                       {{"model", "stories260K"},
                        {"prompt", "Once upon a time"},
                        {"max_tokens", 48},
                        {"ignore_eos", true}}},
                      {"_client", {{"maxRetries", 20}}}});
  ASSERT_TRUE(r.at("ok")) << r.dump();
  for (const json& call : r.at("result")) EXPECT_TRUE(call.at("ok")) << call.dump();
  // One admitted at a time and no queue: the others were refused with 429
  // and retried by the SDK until they got in.
  EXPECT_GT(r.at("fetches").get<int>(), kCalls) << r.dump().substr(0, 2000);
}

}  // namespace
}  // namespace tessera::testing
