// router/openai/response_builder.h: chunk sequences of chat and completions
// streams, non-stream bodies, logprobs shapes, echo, usage, errors.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/openai/response_builder.h"

namespace tessera::router::openai {
namespace {

using Json = nlohmann::ordered_json;

ParsedRequest Parse(Endpoint e, const std::string& body) {
  ApiOr<ParsedRequest> r = ParseRequest(e, body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *std::move(r) : ParsedRequest{};
}

const ResponseMeta kMeta = {"chatcmpl-abc", 1700000000, "served"};

v1::GenerateResponse Msg(int index, std::vector<int32_t> ids, std::string text,
                         v1::FinishReason reason = v1::FINISH_REASON_UNSPECIFIED,
                         int prompt_tokens = 0, int completion_tokens = 0, int cached = 0) {
  v1::GenerateResponse m;
  m.set_index(index);
  for (int32_t id : ids) m.add_token_ids(id);
  m.set_text(std::move(text));
  m.set_finish_reason(reason);
  if (reason != v1::FINISH_REASON_UNSPECIFIED) {
    m.mutable_usage()->set_prompt_tokens(prompt_tokens);
    m.mutable_usage()->set_completion_tokens(completion_tokens);
    m.mutable_usage()->set_cached_prompt_tokens(cached);
  }
  return m;
}

// The JSON payloads of "data: ...\n\n" events ("[DONE]" kept as a string).
std::vector<Json> Events(const std::string& sse) {
  std::vector<Json> out;
  size_t pos = 0;
  while (pos < sse.size()) {
    EXPECT_EQ(sse.compare(pos, 6, "data: "), 0) << sse.substr(pos);
    const size_t end = sse.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos);
    const std::string data = sse.substr(pos + 6, end - pos - 6);
    out.push_back(data == "[DONE]" ? Json("[DONE]") : Json::parse(data));
    pos = end + 2;
  }
  return out;
}

TEST(OpenAiResponse, ChatStreamChunks) {
  ParsedRequest r = Parse(Endpoint::kChat,
                          R"({"messages":[{"role":"user","content":"x"}],"stream":true,
                              "stream_options":{"include_usage":true}})");
  ResponseBuilder b(r, kMeta, nullptr);
  std::string sse = b.OnMessage(0, Msg(0, {10, 11}, "Hel"));
  sse += b.OnMessage(0, Msg(0, {12}, ""));  // held-back text: no chunk
  sse += b.OnMessage(0, Msg(0, {13}, "lo", v1::FINISH_REASON_EOS, 5, 4, 2));
  EXPECT_TRUE(b.all_finished());
  sse += b.Finish();
  std::vector<Json> ev = Events(sse);
  ASSERT_EQ(ev.size(), 5u) << sse;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ev[i]["id"], "chatcmpl-abc");
    EXPECT_EQ(ev[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(ev[i]["created"], 1700000000);
    EXPECT_EQ(ev[i]["model"], "served");
    EXPECT_TRUE(ev[i].contains("usage") && ev[i]["usage"].is_null());
    EXPECT_EQ(ev[i]["choices"][0]["index"], 0);
    EXPECT_TRUE(ev[i]["choices"][0]["logprobs"].is_null());
  }
  EXPECT_EQ(ev[0]["choices"][0]["delta"], Json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(ev[0]["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(ev[1]["choices"][0]["delta"], Json({{"content", "Hel"}}));
  EXPECT_EQ(ev[2]["choices"][0]["delta"], Json({{"content", "lo"}}));
  EXPECT_EQ(ev[2]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(ev[3]["choices"], Json::array());
  EXPECT_EQ(ev[3]["usage"], Json::parse(R"({"prompt_tokens":5,"completion_tokens":4,
      "total_tokens":9,"prompt_tokens_details":{"cached_tokens":2}})"));
  EXPECT_EQ(ev[4], "[DONE]");
  EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n");
}

TEST(OpenAiResponse, ChatStreamWithoutUsageHasNoUsageField) {
  ParsedRequest r =
      Parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],"stream":true})");
  ResponseBuilder b(r, kMeta, nullptr);
  std::string sse = b.OnMessage(0, Msg(0, {1}, "a", v1::FINISH_REASON_LENGTH, 1, 1));
  sse += b.Finish();
  std::vector<Json> ev = Events(sse);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_FALSE(ev[1].contains("usage"));
  EXPECT_EQ(ev[1]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(ev[2], "[DONE]");
}

TEST(OpenAiResponse, ChatStreamTwoChoicesInterleaved) {
  ParsedRequest r = Parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],
      "stream":true,"n":2,"stream_options":{"include_usage":true}})");
  ResponseBuilder b(r, kMeta, nullptr);
  std::string sse = b.OnMessage(0, Msg(1, {1}, "B1"));
  sse += b.OnMessage(0, Msg(0, {2}, "A1"));
  sse += b.OnMessage(0, Msg(1, {3}, "B2", v1::FINISH_REASON_STOP, 7, 2));
  EXPECT_FALSE(b.all_finished());
  sse += b.OnMessage(0, Msg(0, {4, 5}, "A2", v1::FINISH_REASON_LENGTH, 7, 3));
  sse += b.OnMessage(0, Msg(0, {6}, "late"));  // after its finish: ignored
  EXPECT_TRUE(b.all_finished());
  sse += b.Finish();
  std::vector<Json> ev = Events(sse);
  ASSERT_EQ(ev.size(), 8u) << sse;
  auto choice = [&](size_t i) { return ev[i]["choices"][0]; };
  EXPECT_EQ(choice(0)["index"], 1);
  EXPECT_EQ(choice(0)["delta"]["role"], "assistant");
  EXPECT_EQ(choice(1)["delta"]["content"], "B1");
  EXPECT_EQ(choice(2)["index"], 0);
  EXPECT_EQ(choice(2)["delta"]["role"], "assistant");
  EXPECT_EQ(choice(3)["delta"]["content"], "A1");
  EXPECT_EQ(choice(4)["finish_reason"], "stop");
  EXPECT_EQ(choice(5)["finish_reason"], "length");
  EXPECT_EQ(choice(5)["index"], 0);
  // Prompt tokens once for the prompt, completion tokens summed over choices.
  EXPECT_EQ(ev[6]["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(ev[6]["usage"]["completion_tokens"], 5);
  EXPECT_EQ(ev[6]["usage"]["total_tokens"], 12);
  EXPECT_EQ(ev[7], "[DONE]");
}

TEST(OpenAiResponse, CompletionsStreamTwoPromptsTimesTwoChoices) {
  ParsedRequest r = Parse(Endpoint::kCompletions,
                          R"({"prompt":["p","q"],"n":2,"stream":true,"echo":true,
                              "stream_options":{"include_usage":true}})");
  ResponseMeta meta = kMeta;
  meta.id = "cmpl-1";
  ResponseBuilder b(r, meta, nullptr);
  std::string sse = b.OnMessage(1, Msg(1, {1}, "x"));
  sse += b.OnMessage(0, Msg(0, {2}, "y", v1::FINISH_REASON_STOP, 3, 1, 1));
  sse += b.OnMessage(1, Msg(1, {3}, "z", v1::FINISH_REASON_LENGTH, 4, 2));
  sse += b.OnMessage(0, Msg(1, {4}, "", v1::FINISH_REASON_EOS, 3, 1, 1));
  sse += b.OnMessage(1, Msg(0, {}, "", v1::FINISH_REASON_ABORT, 4, 0));
  EXPECT_TRUE(b.all_finished());
  sse += b.Finish();
  std::vector<Json> ev = Events(sse);
  ASSERT_EQ(ev.size(), 7u) << sse;
  auto choice = [&](size_t i) { return ev[i]["choices"][0]; };
  EXPECT_EQ(ev[0]["object"], "text_completion");
  EXPECT_EQ(ev[0]["id"], "cmpl-1");
  EXPECT_EQ(choice(0),
            Json::parse(R"({"index":3,"text":"qx","logprobs":null,"finish_reason":null})"));
  EXPECT_EQ(choice(1),
            Json::parse(R"({"index":0,"text":"py","logprobs":null,"finish_reason":"stop"})"));
  EXPECT_EQ(choice(2)["text"], "z");  // echo only on a choice's first chunk
  EXPECT_EQ(choice(2)["finish_reason"], "length");
  EXPECT_EQ(choice(3),
            Json::parse(R"({"index":1,"text":"p","logprobs":null,"finish_reason":"stop"})"));
  EXPECT_EQ(choice(4),
            Json::parse(R"({"index":2,"text":"q","logprobs":null,"finish_reason":"abort"})"));
  // Usage: prompt tokens 3 + 4 (once per prompt), completions 1 + 2 + 1 + 0.
  EXPECT_EQ(ev[5]["usage"], Json::parse(R"({"prompt_tokens":7,"completion_tokens":4,
      "total_tokens":11,"prompt_tokens_details":{"cached_tokens":1}})"));
  EXPECT_EQ(ev[6], "[DONE]");
}

TEST(OpenAiResponse, NonStreamBodies) {
  ParsedRequest chat =
      Parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],"n":2})");
  ResponseBuilder b(chat, kMeta, nullptr);
  EXPECT_EQ(b.OnMessage(0, Msg(1, {1}, "wor")), "");
  EXPECT_EQ(b.OnMessage(0, Msg(0, {2}, "hel")), "");
  EXPECT_EQ(b.OnMessage(0, Msg(1, {3}, "ld", v1::FINISH_REASON_STOP, 6, 2)), "");
  EXPECT_EQ(b.OnMessage(0, Msg(0, {4}, "lo", v1::FINISH_REASON_LENGTH, 6, 2)), "");
  Json body = Json::parse(b.Finish());
  EXPECT_EQ(body, Json::parse(R"({"id":"chatcmpl-abc","object":"chat.completion",
    "created":1700000000,"model":"served","choices":[
      {"index":0,"message":{"role":"assistant","content":"hello"},"logprobs":null,"finish_reason":"length"},
      {"index":1,"message":{"role":"assistant","content":"world"},"logprobs":null,"finish_reason":"stop"}],
    "usage":{"prompt_tokens":6,"completion_tokens":4,"total_tokens":10,
             "prompt_tokens_details":{"cached_tokens":0}}})"));
  EXPECT_EQ(b.Finish(), "");  // once

  ParsedRequest cmpl = Parse(Endpoint::kCompletions, R"({"prompt":"Say","echo":true})");
  ResponseBuilder c(cmpl, {"cmpl-2", 5, "served"}, nullptr);
  c.OnMessage(0, Msg(0, {1}, " hi", v1::FINISH_REASON_EOS, 2, 1));
  Json cbody = Json::parse(c.Finish());
  EXPECT_EQ(cbody["object"], "text_completion");
  EXPECT_EQ(cbody["choices"],
            Json::parse(R"([{"index":0,"text":"Say hi","logprobs":null,"finish_reason":"stop"}])"));
  EXPECT_EQ(cbody["usage"]["total_tokens"], 3);
}

v1::GenerateResponse WithLogprobs(
    v1::GenerateResponse m, std::vector<std::pair<float, std::vector<std::pair<int, float>>>> lps) {
  for (size_t i = 0; i < lps.size(); ++i) {
    v1::TokenLogprob* lp = m.add_logprobs();
    lp->set_token_id(m.token_ids(i));
    lp->set_logprob(lps[i].first);
    for (auto [id, v] : lps[i].second) {
      v1::TopLogprob* t = lp->add_top();
      t->set_token_id(id);
      t->set_logprob(v);
    }
  }
  return m;
}

TEST(OpenAiResponse, ChatLogprobs) {
  std::unique_ptr<Tokenizer> bytes = MakeByteTokenizer(512);
  ParsedRequest r = Parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],
                                              "logprobs":true,"top_logprobs":1})");
  ResponseBuilder b(r, kMeta, bytes.get());
  // 'h' = 107, 'i' = 108; 0xC3 0xA9 ('é' in two byte tokens) = 198, 172.
  b.OnMessage(0, WithLogprobs(Msg(0, {107, 198}, "h"),
                              {{-0.1f, {{107, -0.1f}, {108, -2.5f}}},
                               {-std::numeric_limits<float>::infinity(), {{5, -1.0f}}}}));
  b.OnMessage(0, Msg(0, {172}, "\xC3\xA9", v1::FINISH_REASON_STOP, 1, 3));  // no logprob entry
  Json body = Json::parse(b.Finish());
  const Json& content = body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  EXPECT_EQ(content[0], Json::parse(R"({"token":"h","logprob":-0.1,"bytes":[104],
      "top_logprobs":[{"token":"h","logprob":-0.1,"bytes":[104]}]})"));
  // A lone byte of a UTF-8 sequence decodes to U+FFFD; -inf becomes -9999.0.
  EXPECT_EQ(content[1]["token"], "\xEF\xBF\xBD");
  EXPECT_EQ(content[1]["bytes"], Json::parse("[239,191,189]"));
  EXPECT_EQ(content[1]["logprob"], -9999.0);
  EXPECT_EQ(content[1]["top_logprobs"][0]["token"], "\x02");
  EXPECT_EQ(content[2]["logprob"], -9999.0);
  EXPECT_EQ(content[2]["top_logprobs"], Json::array());
  EXPECT_EQ(body["choices"][0]["message"]["content"], "h\xC3\xA9");

  // top_logprobs 0: the chosen token's logprob, no alternatives; stream shape.
  ParsedRequest s = Parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],
                                              "logprobs":true,"stream":true})");
  ResponseBuilder sb(s, kMeta, bytes.get());
  std::vector<Json> ev =
      Events(sb.OnMessage(0, WithLogprobs(Msg(0, {107}, "h", v1::FINISH_REASON_STOP, 1, 1),
                                          {{-0.5f, {{108, -0.1f}}}})));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(ev[0]["choices"][0]["logprobs"].is_null());  // the role chunk
  EXPECT_EQ(
      ev[1]["choices"][0]["logprobs"],
      Json::parse(R"({"content":[{"token":"h","logprob":-0.5,"bytes":[104],"top_logprobs":[]}]})"));
}

TEST(OpenAiResponse, CompletionsLogprobs) {
  std::unique_ptr<Tokenizer> bytes = MakeByteTokenizer(512);
  ParsedRequest r = Parse(Endpoint::kCompletions, R"({"prompt":"x","logprobs":2})");
  ResponseBuilder b(r, {"cmpl-3", 1, "served"}, bytes.get());
  b.OnMessage(0, WithLogprobs(Msg(0, {107, 108}, "hi"),
                              {{-0.25f, {{107, -0.25f}, {108, -1.5f}, {109, -3.0f}}},
                               {-1.0f, {{110, -0.5f}, {108, -1.0f}}}}));
  b.OnMessage(0, WithLogprobs(Msg(0, {2}, "", v1::FINISH_REASON_EOS, 1, 3), {{-0.75f, {}}}));
  Json body = Json::parse(b.Finish());
  EXPECT_EQ(body["choices"][0]["logprobs"], Json::parse(R"({
      "tokens":["h","i","</s>"],
      "token_logprobs":[-0.25,-1.0,-0.75],
      "top_logprobs":[{"h":-0.25,"i":-1.5},{"i":-1.0,"k":-0.5},{"</s>":-0.75}],
      "text_offset":[0,1,2]})"));

  // Stream: each chunk has its own logprobs, offsets continuing the choice's text.
  ParsedRequest s = Parse(Endpoint::kCompletions, R"({"prompt":"x","logprobs":0,"stream":true})");
  ResponseBuilder sb(s, {"cmpl-4", 1, "served"}, bytes.get());
  std::string sse = sb.OnMessage(0, WithLogprobs(Msg(0, {107}, "h"), {{-0.5f, {{108, -0.1f}}}}));
  sse += sb.OnMessage(0, WithLogprobs(Msg(0, {108}, "i", v1::FINISH_REASON_STOP, 1, 2),
                                      {{-0.25f, {{108, -0.25f}}}}));
  std::vector<Json> ev = Events(sse);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(
      ev[0]["choices"][0]["logprobs"],
      Json::parse(
          R"({"tokens":["h"],"token_logprobs":[-0.5],"top_logprobs":[{"h":-0.5}],"text_offset":[0]})"));
  EXPECT_EQ(ev[1]["choices"][0]["logprobs"]["text_offset"], Json::parse("[1]"));
}

TEST(OpenAiResponse, ErrorsInStreamAndBody) {
  ParsedRequest r =
      Parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],"stream":true,
                                              "stream_options":{"include_usage":true}})");
  ResponseBuilder b(r, kMeta, nullptr);
  std::string sse = b.OnMessage(0, Msg(0, {1}, "a"));
  v1::GenerateResponse err;
  err.set_finish_reason(v1::FINISH_REASON_ERROR);
  err.set_error_message("worker \xff failed");
  sse += b.OnMessage(0, err);
  ASSERT_TRUE(b.error().has_value());
  EXPECT_EQ(b.error()->http_status, 500);
  EXPECT_EQ(b.OnMessage(0, Msg(0, {2}, "b")), "");  // ignored after the error
  sse += b.Finish();
  std::vector<Json> ev = Events(sse);
  ASSERT_EQ(ev.size(), 4u) << sse;
  EXPECT_EQ(ev[2]["error"]["type"], "server_error");
  EXPECT_EQ(ev[2]["error"]["message"], "worker \xEF\xBF\xBD failed");
  EXPECT_EQ(ev[3], "[DONE]");

  ParsedRequest nr = Parse(Endpoint::kCompletions, R"({"prompt":"x"})");
  ResponseBuilder nb(nr, kMeta, nullptr);
  nb.OnMessage(0, err);
  Json body = Json::parse(nb.Finish());
  EXPECT_EQ(body["error"]["type"], "server_error");
  EXPECT_EQ(Events(ErrorEvent(InvalidRequest("n", "bad")))[0]["error"]["param"], "n");
}

TEST(OpenAiResponse, IgnoresUnknownPromptsAndChoicesAndKeepsUtf8Valid) {
  ParsedRequest r = Parse(Endpoint::kCompletions, R"({"prompt":"x","stream":true})");
  ResponseBuilder b(r, kMeta, nullptr);
  EXPECT_EQ(b.OnMessage(1, Msg(0, {1}, "a")), "");
  EXPECT_EQ(b.OnMessage(-1, Msg(0, {1}, "a")), "");
  EXPECT_EQ(b.OnMessage(0, Msg(1, {1}, "a")), "");
  std::vector<Json> ev = Events(b.OnMessage(0, Msg(0, {1}, "bad \xC3 text")));
  EXPECT_EQ(ev[0]["choices"][0]["text"], "bad \xEF\xBF\xBD text");
}

TEST(OpenAiResponse, ResponseIds) {
  const std::string chat = MakeResponseId(Endpoint::kChat);
  EXPECT_EQ(chat.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(chat.size(), 9u + 32u);
  EXPECT_EQ(MakeResponseId(Endpoint::kCompletions).rfind("cmpl-", 0), 0u);
  EXPECT_NE(MakeResponseId(Endpoint::kChat), chat);
}

}  // namespace
}  // namespace tessera::router::openai
