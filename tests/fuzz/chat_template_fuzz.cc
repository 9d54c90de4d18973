// Fuzz target: a chat template (the Jinja `chat_template` of
// tokenizer_config.json or a --chat-template file), parsed and rendered with
// a fixed small conversation. Whatever the source, Parse and RenderChat
// return a Status (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a limit), never
// crash, hang or throw; a render that succeeds is valid UTF-8 within the
// output limit, and rendering is deterministic.
#include <string>

#include "absl/strings/string_view.h"
#include "common/jinja/chat_template.h"
#include "common/jinja/unicode.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using nlohmann::ordered_json;

// Small limits keep each input fast; the limits themselves are what is
// checked (an over-limit render is RESOURCE_EXHAUSTED, not a hang).
tessera::jinja::RenderLimits Limits() {
  tessera::jinja::RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_allocated_bytes = 1 << 22;
  limits.max_steps = 20000;
  return limits;
}

const ordered_json& Messages() {
  static const ordered_json* messages = new ordered_json(ordered_json::parse(R"([
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2+2? Ünïcödé 😀"},
    {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4",
     "reasoning_content": "add",
     "tool_calls": [{"type": "function",
                     "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "content": "4", "tool_call_id": "call_0"},
    {"role": "user", "content": [{"type": "text", "text": "thanks"}]}
  ])"));
  return *messages;
}

const ordered_json& Extra() {
  static const ordered_json* extra = new ordered_json(ordered_json::parse(R"({
    "enable_thinking": false,
    "tools": [{"type": "function", "function": {"name": "add", "description": "a + b",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}]
  })"));
  return *extra;
}

const ordered_json& SpecialTokens() {
  static const ordered_json* special =
      new ordered_json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  return *special;
}

bool IsTemplateError(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kResourceExhausted;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view source(reinterpret_cast<const char*>(data), size);
  const tessera::jinja::RenderLimits limits = Limits();
  const absl::StatusOr<tessera::jinja::ChatTemplate> tmpl =
      tessera::jinja::ChatTemplate::Parse(source, limits);
  if (!tmpl.ok()) {
    TESSERA_FUZZ_CHECK(tmpl.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  const absl::StatusOr<std::string> out =
      tmpl->RenderChat(Messages(), /*add_generation_prompt=*/true, Extra(), SpecialTokens());
  if (!out.ok()) {
    TESSERA_FUZZ_CHECK(IsTemplateError(out.status().code()));
    return 0;
  }
  TESSERA_FUZZ_CHECK(tessera::jinja::IsValidUtf8(*out));
  TESSERA_FUZZ_CHECK(out->size() <= static_cast<size_t>(limits.max_output_bytes));
  // strftime_now() reads the clock: only templates without it must repeat exactly.
  if (source.find("strftime_now") == absl::string_view::npos) {
    const absl::StatusOr<std::string> again =
        tmpl->RenderChat(Messages(), /*add_generation_prompt=*/true, Extra(), SpecialTokens());
    TESSERA_FUZZ_CHECK(again.ok() && *again == *out);
  }
  return 0;
}
