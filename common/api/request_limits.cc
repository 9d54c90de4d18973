#include "common/api/request_limits.h"

#include "absl/strings/str_cat.h"
#include "common/api/field_limits.h"

namespace tessera::api {

v1::ModelInfo ToModelInfo(const RequestLimits& limits) {
  v1::ModelInfo info;
  info.set_id(limits.model_name);
  info.set_max_model_len(limits.max_model_len);
  info.set_vocab_size(limits.vocab_size);
  info.set_max_logprobs(limits.max_logprobs);
  info.set_max_stop(limits.max_stop);
  info.set_max_n(limits.max_n);
  return info;
}

RequestLimits FromModelInfo(const v1::ModelInfo& info) {
  RequestLimits limits;
  limits.model_name = info.id();
  limits.vocab_size = info.vocab_size();
  limits.max_model_len = info.max_model_len();
  if (info.has_max_logprobs()) limits.max_logprobs = info.max_logprobs();
  if (info.has_max_stop()) limits.max_stop = info.max_stop();
  if (info.has_max_n()) limits.max_n = info.max_n();
  return limits;
}

absl::Status CheckModelName(absl::string_view requested, absl::string_view served,
                            absl::string_view server) {
  if (requested.empty() || requested == served) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("model '", Truncated(requested),
                                          "' is not served here; this ", server, " serves '",
                                          served, "'"));
}

absl::Status CheckModelName(absl::string_view requested, std::span<const std::string> served,
                            absl::string_view server) {
  if (requested.empty()) return absl::OkStatus();
  for (const std::string& name : served) {
    if (name == requested) return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("model '", Truncated(requested),
                                          "' is not served here; this ", server, " serves '",
                                          served.empty() ? std::string() : served.front(), "'"));
}

}  // namespace tessera::api
