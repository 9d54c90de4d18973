// OpenAI request bodies -> Tessera's internal GenerateRequest: the JSON of
// POST /v1/chat/completions and POST /v1/completions (plus vLLM's extension
// fields) checked for types and shapes and translated, field by field.
//
// What the parser checks: JSON types and shapes, and the rules only the
// OpenAI API has (stream_options without stream, top_logprobs without
// logprobs, echo with logprobs, fields Tessera does not serve). Limits that
// Tessera's shared validation checks (common/api/request_validation.h:
// max_tokens >= 1, temperature, top_p, ..., logprobs <= max_logprobs, token
// ids in the vocabulary, prompt + max_tokens <= max_model_len) are left to
// it: the HTTP glue runs ValidateGenerateRequest on every prompt after this
// parse and turns its Status into an ApiError with FromStatus.
//
// Unknown fields are ignored, as OpenAI and vLLM do. Known fields Tessera
// does not serve are a 400 naming the field when they ask for something
// (tools, response_format other than text, logit_bias, ...; see
// request.cc's list), and accepted when they ask for nothing (null, [], {},
// the default value).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/tokenizer.h"
#include "nlohmann/json.hpp"
#include "router/openai/api_error.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router::openai {

enum class Endpoint {
  kChat,         // POST /v1/chat/completions
  kCompletions,  // POST /v1/completions
};

enum class LogprobsMode {
  kNone,
  kChat,         // {"content": [{"token", "logprob", "bytes", "top_logprobs"}]}
  kCompletions,  // {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
};

struct ParseOptions {
  // The request id the glue was given (e.g. an X-Request-Id header); it
  // takes precedence over the body's `request_id` (vLLM's order).
  std::string request_id;
};

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChat;
  // One request per prompt (chat: exactly one). Each has return_text set,
  // the same sampling parameters and priority, and request_id = the id
  // (ParseOptions, else the body's `request_id`, else empty = the router
  // picks one), suffixed "-<p>" when there are several prompts.
  std::vector<v1::GenerateRequest> prompts;
  // Completions with echo: per prompt, the text to put before its choices'
  // text. Text prompts: the prompt as given. Token-id prompts: empty until
  // ResolveEchoText fills it in. Empty vector without echo.
  std::vector<std::string> echo_text;
  bool echo = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int n = 1;                   // choices per prompt; prompt p's are p*n .. p*n+n-1
  LogprobsMode logprobs = LogprobsMode::kNone;
  // Top alternatives per token to return (chat: top_logprobs, 0..20;
  // completions: logprobs). SamplingParams.logprobs is max(top_logprobs, 1):
  // Tessera's engine returns the chosen token's logprob only with at least
  // one alternative, and the response builder drops the extra one.
  int top_logprobs = 0;
  std::string model;  // as given ("" when absent); the glue checks it
  std::string user;   // `user`: also each prompt's GenerateRequest.user (the tenant, when
                      // the router's --user-tenants is on)
};

// Parses `body` (the raw HTTP body) for `endpoint`. 400 invalid_request_error
// naming the field for anything wrong; never throws.
ApiOr<ParsedRequest> ParseRequest(Endpoint endpoint, absl::string_view body,
                                  const ParseOptions& options = {});
// The same for a body already parsed (e.g. by the glue, to read `model`).
ApiOr<ParsedRequest> ParseRequestJson(Endpoint endpoint, const nlohmann::ordered_json& body,
                                      const ParseOptions& options = {});

// The chat messages of a body (`messages`) as a ChatPrompt, with
// `add_generation_prompt`, `continue_final_message` (only false is
// supported) and `chat_template_kwargs`; shared by chat completions and
// /tokenize. Text content parts are joined with "\n" (vLLM's "string"
// content format); null content is "". `name` and `reasoning_content`
// (strings) go to their ChatMessage fields, every other message field to
// fields_json, as given, except that an assistant's
// tool_calls[*].function.arguments given as a JSON string holding an object
// become that object (as vLLM does, for templates that iterate over them).
ApiOr<v1::ChatPrompt> ParseChatPrompt(const nlohmann::ordered_json& body);

// An unset max_tokens (chat without max_tokens / max_completion_tokens,
// completions with an explicit "max_tokens": null) is filled later with
// everything that fits (api::FillDefaultMaxTokens, by the router's
// RequestIntake once the prompt is tokenized); completions without the field
// get vLLM's (and OpenAI's) 16 at parse time.

// Fills the echo text of token-id prompts (when `parsed.echo`): their ids
// decoded with special tokens kept (vLLM decodes the prompt that way).
// INVALID_ARGUMENT from the tokenizer for ids outside the vocabulary (the
// glue validates the prompts first, so this does not happen there).
absl::Status ResolveEchoText(ParsedRequest& parsed, const Tokenizer& tokenizer);

}  // namespace tessera::router::openai
