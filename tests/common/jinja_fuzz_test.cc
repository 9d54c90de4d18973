// Randomized robustness test of the Jinja interpreter: templates built from
// token soup and from a small random grammar, rendered against random
// conversations. Whatever the input, Parse/Render return a Status (never
// crash, hang or throw), errors are INVALID_ARGUMENT or RESOURCE_EXHAUSTED,
// output is valid UTF-8 and rendering is deterministic. The run is bounded by
// a case count and a time budget (env JINJA_FUZZ_SECONDS, JINJA_FUZZ_SEED).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/jinja/chat_template.h"
#include "common/jinja/unicode.h"
#include "gtest/gtest.h"
#include "tests/testing/sanitizers.h"

namespace tessera::jinja {
namespace {

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  int Below(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Below(static_cast<int>(v.size())))];
  }

  // Random text: ASCII, template-looking syntax, multi-byte UTF-8, controls.
  std::string Text(int max_len) {
    // clang-format off
    static const std::vector<std::string> kPieces = {
        "a", "Z", " ", "\n", "\t", "\r\n", "{", "}", "%", "#", "{{ x }}", "{% raw %}", "'", "\"",
        "\\", "é", "日本", "😀", "\u0085", "\u2028", "\ufeff", "\x01", "<think>", "</think>",
        "<tool_response>", "</tool_response>", "0", "-1", "1.5"};
    // clang-format on
    std::string out;
    const int n = Below(max_len + 1);
    for (int i = 0; i < n; ++i) out += Pick(kPieces);
    return out;
  }

  nlohmann::ordered_json Json(int depth) {
    switch (Below(depth > 0 ? 9 : 6)) {
      case 0:
        return nullptr;
      case 1:
        return Below(2) == 0;
      case 2:
        return static_cast<int64_t>(rng_()) >> Below(64);
      case 3:
        return static_cast<double>(Below(2000) - 1000) / 7.0;
      case 4:
      case 5:
        return Text(6);
      case 6:
      case 7: {
        nlohmann::ordered_json obj = nlohmann::ordered_json::object();
        const int n = Below(4);
        for (int i = 0; i < n; ++i)
          obj[Pick(std::vector<std::string>{"role", "content", "name", "arguments", "type",
                                            Text(2)})] = Json(depth - 1);
        return obj;
      }
      default: {
        nlohmann::ordered_json arr = nlohmann::ordered_json::array();
        const int n = Below(4);
        for (int i = 0; i < n; ++i) arr.push_back(Json(depth - 1));
        return arr;
      }
    }
  }

  nlohmann::ordered_json Messages() {
    static const std::vector<std::string> kRoles = {"system", "user", "assistant", "tool", "x"};
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    const int n = Below(5);
    for (int i = 0; i < n; ++i) {
      nlohmann::ordered_json m = {{"role", Pick(kRoles)}, {"content", Text(8)}};
      if (Below(4) == 0) m["content"] = Json(2);
      if (Below(5) == 0) {
        m["tool_calls"] = {{{"id", Text(3)},
                            {"type", "function"},
                            {"function", {{"name", Text(2)}, {"arguments", Json(2)}}}}};
      }
      if (Below(8) == 0) m["reasoning_content"] = Text(4);
      messages.push_back(std::move(m));
    }
    if (Below(10) == 0) messages.push_back(Json(2));
    return messages;
  }

  // Token soup: fragments of Jinja syntax in random order.
  std::string Soup() {
    // clang-format off
    static const std::vector<std::string> kTokens = {
        "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", "{%+", "+%}", " ", "\n",
        "if", "elif", "else", "endif", "for", "in", "endfor", "set", "endset", "macro",
        "endmacro", "call", "endcall", "filter", "endfilter", "raw", "endraw", "break",
        "continue", "with", "endwith", "generation", "endgeneration", "not", "and", "or", "is",
        "none", "true", "loop", "ns", "namespace(", "messages", "m", "x", "range(", "(", ")",
        "[", "]", "{", "}", ",", ":", ".", "|", "~", "+", "-", "*", "**", "/", "//", "%", "==",
        "!=", "<", ">=", "=", "'s'", "\"t\\n\"", "'\\x4", "0", "1", "2.5", "1e400", "0x1F", "-9",
        "|trim", "|tojson", "|length", "|map(attribute='role')", "|selectattr('role')", "|list",
        "|join(',')", "|default('d')", "|sort", "|unique", "|reverse", "|first", "|last",
        "|items", "|indent(2)", "|int", "|round", "|string", "|upper", ".split(", ".strip()",
        ".startswith(", ".items()", ".get(", "[::-1]", "[1:]", "is defined", "is string",
        "raise_exception(", "strftime_now('%Y')", "*", "**", "é", "😀", "\xff", "\xc3"};
    // clang-format on
    std::string out;
    const int n = Below(40);
    for (int i = 0; i < n; ++i) out += Pick(kTokens);
    return out;
  }

  // A random expression from a small grammar (mostly valid syntax).
  std::string Expr(int depth) {
    // clang-format off
    static const std::vector<std::string> kAtoms = {
        "messages", "m", "m.role", "m.content", "m['content']", "x", "loop.index", "ns.v",
        "none", "true", "1", "0", "-3", "2.5", "'a b'", "'<think>'", "[1, 'a']", "{'k': 1}",
        "range(3)", "messages[0]", "messages[-1].content", "tools", "add_generation_prompt"};
    // clang-format on
    // clang-format off
    static const std::vector<std::string> kBinary = {
        " + ", " - ", " * ", " / ", " // ", " % ", " ~ ", " == ", " != ", " < ", " in ",
        " not in ", " and ", " or ", " ** "};
    // clang-format on
    // clang-format off
    static const std::vector<std::string> kPostfix = {
        "|trim", "|tojson", "|length", "|string", "|list", "|first", "|last", "|sort",
        "|map(attribute='role')|list", "|selectattr('role', 'equalto', 'user')|list",
        "|join('|')", "|default('d', true)", "|items|list", "|reverse|list", "|unique|list",
        "|int", "|float", "|abs", "|round(1)", "|upper", "|indent(2, true)", "|wordcount",
        ".split('a')", ".strip()", ".lstrip('\\n')", ".startswith('<')", ".endswith(('a', 'b'))",
        ".replace('a', 'b')", ".get('role')", ".items()|list", "[0]", "[1:]", "[::-1]", ".x",
        " is defined", " is not none", " is string", " is mapping", " is iterable",
        " is divisibleby 2", " is odd"};
    // clang-format on
    if (depth <= 0 || Below(3) == 0) return Pick(kAtoms);
    switch (Below(5)) {
      case 0:
        return Expr(depth - 1) + Pick(kBinary) + Expr(depth - 1);
      case 1:
        return "(" + Expr(depth - 1) + ")" + Pick(kPostfix);
      case 2:
        return Expr(depth - 1) + " if " + Expr(depth - 1) + " else " + Expr(depth - 1);
      case 3:
        return "not " + Expr(depth - 1);
      default:
        return Expr(depth - 1) + Pick(kPostfix);
    }
  }

  std::string Statements(int depth) {
    std::string out;
    const int n = 1 + Below(4);
    for (int i = 0; i < n; ++i) {
      const std::string ws = Pick(std::vector<std::string>{"", "-", "+"});
      switch (depth <= 0 ? Below(3) : Below(9)) {
        case 0:
          out += Text(3);
          break;
        case 1:
          out += "{{" + ws.substr(0, ws == "+" ? 0 : 1) + " " + Expr(2) + " }}";
          break;
        case 2:
          out += "{%" + ws + " set ns.v = " + Expr(2) + " %}";
          break;
        case 3:
          out += "{% if " + Expr(2) + " %}" + Statements(depth - 1) + "{% elif " + Expr(1) +
                 " %}x{% else %}" + Statements(depth - 1) + "{% endif %}\n";
          break;
        case 4:
          out += "{% for m in " + Expr(1) + (Below(2) ? " if " + Expr(1) : "") + " %}" +
                 Statements(depth - 1) + (Below(3) == 0 ? "{% break %}" : "") +
                 "{% else %}e{% endfor %}";
          break;
        case 5:
          out += "{% set x = " + Expr(2) + " %}";
          break;
        case 6:
          out += "{% macro mac(a, b=" + Expr(1) + ") %}" + Statements(depth - 1) +
                 "{% endmacro %}{{ mac(" + Expr(1) + ") }}";
          break;
        case 7:
          out += "{% for k, v in " + Expr(1) + " %}{{ k }}={{ v }}{% endfor %}";
          break;
        default:
          out += "{{ raise_exception(" + Expr(1) + ") if " + Expr(1) + " }}";
          break;
      }
    }
    return out;
  }

  std::string Template() {
    switch (Below(3)) {
      case 0:
        return Soup();
      default:
        return "{% set ns = namespace(v=0) %}" + Statements(3);
    }
  }

 private:
  std::mt19937_64 rng_;
};

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoll(v, nullptr, 10) : fallback;
}

TEST(JinjaFuzzTest, RandomTemplatesAndMessagesNeverCrash) {
  const uint64_t seed = static_cast<uint64_t>(EnvInt("JINJA_FUZZ_SEED", 20261202));
  const auto budget = std::chrono::seconds(EnvInt("JINJA_FUZZ_SECONDS", 60));
  constexpr int64_t kMaxCases = 300000;
  Generator gen(seed);
  RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_allocated_bytes = 1 << 22;
  limits.max_steps = 20000;
  const auto start = std::chrono::steady_clock::now();
  int64_t cases = 0, parsed = 0, rendered = 0;
  for (; cases < kMaxCases; ++cases) {
    if ((cases & 255) == 0 && std::chrono::steady_clock::now() - start > budget) break;
    const std::string source = gen.Template();
    auto tmpl = ChatTemplate::Parse(source, limits);
    if (!tmpl.ok()) {
      ASSERT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument) << source;
      continue;
    }
    ++parsed;
    const nlohmann::ordered_json messages = gen.Messages();
    const nlohmann::ordered_json extra =
        gen.Below(3) == 0
            ? nlohmann::ordered_json{{"enable_thinking", gen.Below(2) == 0}, {"tools", gen.Json(2)}}
            : nlohmann::ordered_json::object();
    const nlohmann::ordered_json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
    auto out = tmpl->RenderChat(messages, gen.Below(2) == 0, extra, special);
    if (!out.ok()) {
      const auto code = out.status().code();
      ASSERT_TRUE(code == absl::StatusCode::kInvalidArgument ||
                  code == absl::StatusCode::kResourceExhausted)
          << out.status() << "\n"
          << source;
      continue;
    }
    ++rendered;
    ASSERT_TRUE(IsValidUtf8(*out)) << source;
    ASSERT_LE(out->size(), static_cast<size_t>(limits.max_output_bytes));
    if ((cases & 63) == 0 && source.find("strftime_now") == std::string::npos) {
      auto again = tmpl->RenderChat(messages, false, extra, special);
      auto first = tmpl->RenderChat(messages, false, extra, special);
      ASSERT_EQ(again.ok(), first.ok()) << source;
      if (again.ok()) ASSERT_EQ(*again, *first) << source;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("seed %llu: %lld cases in %.1f s, %lld parsed, %lld rendered\n",
              static_cast<unsigned long long>(seed), static_cast<long long>(cases), seconds,
              static_cast<long long>(parsed), static_cast<long long>(rendered));
  // The run must have exercised the renderer, not only the parser's error paths. (Under a
  // sanitizer the time budget, not this count, bounds the run.)
  if (!tessera::testing::kSanitizerBuild) EXPECT_GE(cases, 10000);
  EXPECT_GE(parsed, cases / 10);
  EXPECT_GE(rendered, parsed / 10);
}

}  // namespace
}  // namespace tessera::jinja
