#include "router/openai/models_tokenize.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "router/openai/json_fields.h"
#include "router/openai/request.h"

namespace tessera::router::openai {
namespace {

using internal::Fail;
using internal::Find;
using internal::GetBool;
using internal::OrderedJson;
using internal::TypeName;

void CheckModelField(const OrderedJson& body, std::span<const std::string> served) {
  const std::string model = internal::GetString(body, "model").value_or("");
  if (std::optional<ApiError> e = CheckModel(model, served)) throw internal::BadRequest{*e};
}

template <typename T>
T OrThrow(absl::StatusOr<T> value, bool chat) {
  if (!value.ok()) throw internal::BadRequest{FromStatus(value.status(), chat)};
  return *std::move(value);
}

std::string Tokenize(const OrderedJson& body, const ModelText& text,
                     const api::RequestLimits& limits, std::span<const std::string> served) {
  CheckModelField(body, served);
  if (GetBool(body, "return_token_strs").value_or(false)) {
    Fail("return_token_strs", "`return_token_strs` is not supported by this server");
  }
  std::vector<int32_t> ids;
  if (Find(body, "messages") != nullptr) {
    for (const char* field : {"tools", "chat_template"}) {
      const OrderedJson* v = Find(body, field);
      if (v != nullptr && !(v->is_array() && v->empty())) {
        Fail(field, absl::StrCat("`", field, "` is not supported by this server"));
      }
    }
    ApiOr<v1::ChatPrompt> chat = ParseChatPrompt(body);
    if (!chat.ok()) throw internal::BadRequest{chat.error()};
    const std::string rendered = OrThrow(text.RenderChat(*chat), /*chat=*/true);
    const bool add_special = GetBool(body, "add_special_tokens").value_or(false);
    ids = OrThrow(text.tokenizer().Encode(rendered, add_special), true);
  } else {
    const OrderedJson* prompt = Find(body, "prompt");
    if (prompt == nullptr || !prompt->is_string()) {
      Fail("prompt", absl::StrCat("`prompt` must be a string (or give `messages`), got ",
                                  prompt == nullptr ? "nothing" : TypeName(*prompt)));
    }
    const bool add_special = GetBool(body, "add_special_tokens").value_or(true);
    ids = OrThrow(text.tokenizer().Encode(prompt->get<std::string>(), add_special), false);
  }
  OrderedJson out;
  out["count"] = ids.size();
  out["max_model_len"] = limits.max_model_len;
  out["tokens"] = ids;
  out["token_strs"] = nullptr;
  return internal::Dump(out);
}

std::string Detokenize(const OrderedJson& body, const ModelText& text,
                       const api::RequestLimits& limits, std::span<const std::string> served) {
  CheckModelField(body, served);
  const OrderedJson* tokens = Find(body, "tokens");
  if (tokens == nullptr || !tokens->is_array()) {
    Fail("tokens", absl::StrCat("`tokens` must be an array of token ids, got ",
                                tokens == nullptr ? "nothing" : TypeName(*tokens)));
  }
  const int64_t vocab = limits.vocab_size > 0 ? limits.vocab_size : text.tokenizer().vocab_size();
  std::vector<int32_t> ids;
  ids.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string where = absl::StrCat("tokens[", i, "]");
    const OrderedJson& t = (*tokens)[i];
    if (!t.is_number()) {
      Fail("tokens", absl::StrCat("`", where, "` must be a token id, got ", TypeName(t)));
    }
    const double as_double = t.get<double>();
    if (!(as_double >= 0 && as_double < static_cast<double>(vocab))) {
      Fail("tokens", absl::StrCat("`", where, "` = ", t.dump(), " is outside the vocabulary [0, ",
                                  vocab, ")"));
    }
    ids.push_back(static_cast<int32_t>(*internal::AsInt(t, "tokens", 0, vocab - 1)));
  }
  OrderedJson out;
  out["prompt"] = OrThrow(text.tokenizer().Decode(ids, /*skip_special=*/false), false);
  return internal::Dump(out);
}

template <typename Fn>
ApiOr<std::string> Run(absl::string_view body, Fn&& fn) {
  ApiOr<OrderedJson> json = internal::ParseObject(body);
  if (!json.ok()) return json.error();
  return internal::Guard<std::string>([&] { return fn(*json); });
}

}  // namespace

std::string ModelsBody(std::span<const std::string> served_names, const v1::ModelInfo& info,
                       int64_t created) {
  OrderedJson data = OrderedJson::array();
  for (const std::string& name : served_names) {
    data.push_back({{"id", name},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", "tessera"},
                    {"root", info.id()},
                    {"parent", nullptr},
                    {"max_model_len", info.max_model_len()}});
  }
  return internal::Dump({{"object", "list"}, {"data", std::move(data)}});
}

ApiOr<std::string> TokenizeBody(absl::string_view body, const ModelText& text,
                                const api::RequestLimits& limits,
                                std::span<const std::string> served_names) {
  return Run(body, [&](const OrderedJson& j) { return Tokenize(j, text, limits, served_names); });
}

ApiOr<std::string> DetokenizeBody(absl::string_view body, const ModelText& text,
                                  const api::RequestLimits& limits,
                                  std::span<const std::string> served_names) {
  return Run(body, [&](const OrderedJson& j) { return Detokenize(j, text, limits, served_names); });
}

}  // namespace tessera::router::openai
