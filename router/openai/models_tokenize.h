// The OpenAI-compatible side endpoints that need no worker: GET /v1/models
// and vLLM's POST /tokenize and POST /detokenize, answered from the served
// model's ModelText (tokenizer + chat template) and limits. Pure functions;
// thread-safe (ModelText's const methods are).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/strings/string_view.h"
#include "common/api/request_limits.h"
#include "common/model_text.h"
#include "router/openai/api_error.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::router::openai {

// {"object":"list","data":[{"id","object":"model","created","owned_by":"tessera",
// "root","parent":null,"max_model_len"}]}: one entry per served name (e.g.
// --served-model-name aliases), `root` = the model the workers report.
std::string ModelsBody(std::span<const std::string> served_names, const v1::ModelInfo& info,
                       int64_t created);

// POST /tokenize (vLLM): {"model"?, "prompt": "...", "add_special_tokens"?
// (default true)} or {"model"?, "messages": [...], "add_generation_prompt"?
// (default true), "add_special_tokens"? (default false),
// "chat_template_kwargs"?} -> {"count", "max_model_len", "tokens",
// "token_strs": null}. 404 for a model not in `served_names`; 400 naming the
// field for bad input, a chat template that raises, or a model without one.
ApiOr<std::string> TokenizeBody(absl::string_view body, const ModelText& text,
                                const api::RequestLimits& limits,
                                std::span<const std::string> served_names);

// POST /detokenize (vLLM): {"model"?, "tokens": [ids]} -> {"prompt": text},
// special tokens kept. 400 naming "tokens" for ids outside the vocabulary
// ([0, limits.vocab_size), or the tokenizer's when that is 0).
ApiOr<std::string> DetokenizeBody(absl::string_view body, const ModelText& text,
                                  const api::RequestLimits& limits,
                                  std::span<const std::string> served_names);

}  // namespace tessera::router::openai
