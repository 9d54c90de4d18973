// Tests of the ChatTemplate API: error reporting (syntax errors with line and
// column, raise_exception, runtime errors), RenderChat's variables as
// transformers passes them, guard rails on untrusted templates, and
// concurrent rendering of one parsed template.
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/jinja/chat_template.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::jinja {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<std::string> RenderSource(const std::string& source,
                                         const nlohmann::ordered_json& context = {},
                                         RenderLimits limits = {}) {
  auto tmpl = ChatTemplate::Parse(source, limits);
  if (!tmpl.ok()) return tmpl.status();
  return tmpl->Render(context.is_null() ? nlohmann::ordered_json::object() : context);
}

TEST(ChatTemplateTest, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    std::string source;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"ok\n{% if %}", "line 2, column 7: Expected an expression, got 'end of statement block'"},
      {"{{ 1 +", "line 1, column 7: unexpected end of template"},
      {"a\n\n  {{ 1 + }}", "line 3, column 10: unexpected 'end of print statement'"},
      {"{% endif %}", "line 1, column 4: Encountered unknown tag 'endif'."},
      {"{% for x in y %}", "Jinja was looking for the following tags: 'endfor' or 'else'"},
      {"{{ 'abc }}", "line 1, column 4: unexpected char \"'\""},
      {"{# never closed", "line 1, column 1: Missing end of comment tag"},
      {"{% raw %}x", "Missing end of raw directive"},
      {"{{ x | }}", "expected token 'name', got 'end of print statement'"},
      {"{{ (1 }}", "unexpected '}'"},
      {"{{ a ! b }}", "unexpected char '!'"},
      {"{% break %}", "'break' outside of a loop"},
      {"{% include 'x' %}", "Encountered unknown tag 'include'."},
      {"{{ 99999999999999999999 }}", "integer literal does not fit in 64 bits"},
  };
  for (const Case& c : cases) {
    auto tmpl = ChatTemplate::Parse(c.source);
    ASSERT_FALSE(tmpl.ok()) << c.source;
    EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument) << c.source;
    EXPECT_THAT(std::string(tmpl.status().message()), StartsWith("template syntax error at line"))
        << c.source;
    EXPECT_THAT(std::string(tmpl.status().message()), HasSubstr(c.message)) << c.source;
  }
}

TEST(ChatTemplateTest, RaiseExceptionGivesExactlyItsMessage) {
  auto out = RenderSource("a{% if x %}{{ raise_exception('Bad role: ' ~ x) }}{% endif %}",
                          {{"x", "tool"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "Bad role: tool");
}

TEST(ChatTemplateTest, RuntimeErrorsNameTheLine) {
  auto out = RenderSource("line one\n{{ 'a' + 1 }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(),
            "chat template error at line 2: can only concatenate str (not \"int\") to str");
}

TEST(ChatTemplateTest, RenderChatPassesTransformersVariables) {
  auto tmpl = ChatTemplate::Parse(
      "{{ bos_token }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}|"
      "{{ messages|length }}|{{ enable_thinking }}|{{ eos_token is defined }}|{{ pad_token }}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const auto messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  const auto special = nlohmann::ordered_json::parse(R"({"bos_token": "<s>", "pad_token": null})");
  auto out =
      tmpl->RenderChat(messages, true, nlohmann::ordered_json{{"enable_thinking", false}}, special);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<s>|None|None|True|1|False|False|");
  // Extra kwargs may set tools, but not the arguments of apply_chat_template itself.
  out = tmpl->RenderChat(messages, false, nlohmann::ordered_json{{"tools", {1}}}, special);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, StartsWith("<s>|[1]|None|False|"));
  out = tmpl->RenderChat(messages, false, nlohmann::ordered_json{{"messages", 1}}, special);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  out = tmpl->RenderChat(nlohmann::ordered_json::object(), false, {}, special);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, TojsonKeepsTheKeyOrderOfOrderedJson) {
  const auto args = nlohmann::ordered_json::parse(R"({"zeta": 1, "alpha": {"y": [true, null]}})");
  auto out = RenderSource("{{ args|tojson }}", {{"args", args}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"zeta": 1, "alpha": {"y": [true, null]}})");
}

TEST(ChatTemplateTest, RejectsInvalidUtf8) {
  EXPECT_EQ(ChatTemplate::Parse("ab\xff").status().code(), absl::StatusCode::kInvalidArgument);
  auto tmpl = ChatTemplate::Parse("{{ messages[0].content }}");
  ASSERT_TRUE(tmpl.ok());
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "user"}, {"content", std::string("bad \xc3(")}});
  auto out = tmpl->RenderChat(messages, false, {}, {});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("messages[0].content"));
}

TEST(ChatTemplateTest, StrftimeNowFormatsTheCurrentTime) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  auto out = RenderSource("{{ strftime_now('%Y') }}|{{ strftime_now('') }}|");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::to_string(tm.tm_year + 1900) + "||");
}

TEST(ChatTemplateTest, GenerationTagRendersItsBody) {
  auto out = RenderSource("{% generation %}a{{ 1 }}{% endgeneration %}b");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "a1b");
}

TEST(ChatTemplateGuardRailsTest, LimitsStopRunawayTemplates) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  limits.max_steps = 10000;
  limits.max_call_depth = 20;
  limits.max_allocated_bytes = 100000;
  struct Case {
    std::string source;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}", "evaluation steps"},
      {"{% for i in range(100) %}{{ 'x' * 50 }}{% endfor %}", "the rendered text exceeds 1000"},
      {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macro calls nested deeper"},
      {"{{ 'a' * 1000000000 }}", "exceeds the limit of 1000 bytes"},
      {"{{ [1] * 1000000000 }}", "the template built more than 100000 bytes"},
      {"{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
       "{% endfor %}",
       "exceeds the limit"},
      {"{% for i in range(1000) %}{% set x = range(900)|list %}{% endfor %}",
       "the template built more than 100000 bytes"},
  };
  nlohmann::ordered_json context;
  context["xs"] = nlohmann::ordered_json::array();
  for (int i = 0; i < 1000; ++i) context["xs"].push_back(i);
  for (const Case& c : cases) {
    auto out = RenderSource(c.source, context, limits);
    ASSERT_FALSE(out.ok()) << c.source;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted) << c.source;
    EXPECT_THAT(std::string(out.status().message()), HasSubstr(c.message)) << c.source;
  }
}

TEST(ChatTemplateGuardRailsTest, DeepNestingIsAnErrorNotACrash) {
  const std::vector<std::string> sources = {
      "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
      "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}",
      "{{ 1" +
          [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += " + 1";
            return s;
          }() +
          " }}",
      "{{ x" +
          [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += ".a";
            return s;
          }() +
          " }}",
      "{{ x" +
          [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += "|e";
            return s;
          }() +
          " }}",
      "{{ " +
          [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += "not ";
            return s;
          }() +
          "1 }}",
      [] {
        std::string s;
        for (int i = 0; i < 100000; ++i) s += "{% if 1 %}";
        return s;
      }(),
  };
  for (const std::string& source : sources) {
    auto tmpl = ChatTemplate::Parse(source);
    ASSERT_FALSE(tmpl.ok()) << source.substr(0, 40);
    EXPECT_THAT(std::string(tmpl.status().message()), HasSubstr("too deeply"));
  }
}

TEST(ChatTemplateTest, Stories260kTemplateRendersPlainTurns) {
  std::ifstream in(std::string(TESSERA_TEST_DATA_DIR) + "/stories260k_chat.jinja");
  ASSERT_TRUE(in.good());
  std::stringstream source;
  source << in.rdbuf();
  auto tmpl = ChatTemplate::Parse(source.str());
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const auto special = nlohmann::ordered_json::parse(
      R"({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})");
  // Expected strings: Python Jinja2 3.1.6 with transformers' settings.
  auto out =
      tmpl->RenderChat(nlohmann::ordered_json::parse(
                           R"([{"role": "user", "content": "Tell me a story about a cat."}])"),
                       true, {}, special);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<s>User: Tell me a story about a cat.\nAssistant:");
  out = tmpl->RenderChat(nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": " Be kind. "},
      {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"}]},
      {"role": "assistant", "content": "Once upon a time"}, {"role": "user", "content": "More"}])"),
                         false, {}, special);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<s>Be kind.\n\nUser: Hi\nAssistant: Once upon a time</s>\nUser: More\n");
  out = tmpl->RenderChat(nlohmann::ordered_json::parse(R"([{"role": "tool", "content": "x"}])"),
                         true, {}, special);
  EXPECT_EQ(out.status().message(),
            "stories260K chat: only system, user and assistant roles are supported");
}

TEST(ChatTemplateTest, ConcurrentRendersOfOneTemplateAgree) {
  auto tmpl = ChatTemplate::Parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
      "<{{ m.role }}>{{ m.content|trim }}{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(tmpl.ok());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        nlohmann::ordered_json messages = nlohmann::ordered_json::array();
        for (int k = 0; k <= (i + t) % 5; ++k) {
          messages.push_back({{"role", "user"}, {"content", " m" + std::to_string(k) + " "}});
        }
        std::string expected;
        for (int k = 0; k <= (i + t) % 5; ++k) expected += "<user>m" + std::to_string(k);
        expected += std::to_string((i + t) % 5 + 1);
        auto out = tmpl->RenderChat(messages, false, {}, {});
        if (!out.ok() || *out != expected) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace tessera::jinja
