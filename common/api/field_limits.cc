#include "common/api/field_limits.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera::api {
namespace {

using L = FieldLimits;

// A byte that starts no UTF-8 sequence (10xxxxxx continues one).
bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

bool HasControlOrSpace(absl::string_view s) {
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return true;
  }
  return false;
}

bool HasControl(absl::string_view s) {
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

absl::Status CheckChat(const v1::ChatPrompt& chat) {
  RETURN_IF_ERROR(CheckCount("chat.messages", chat.messages_size(), L::kChatMessages));
  size_t total = chat.chat_template_kwargs_json().size();
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    RETURN_IF_ERROR(
        CheckBytes(absl::StrCat("chat.messages[", i, "].role"), m.role(), L::kChatRoleBytes));
    RETURN_IF_ERROR(
        CheckBytes(absl::StrCat("chat.messages[", i, "].name"), m.name(), L::kChatNameBytes));
    total += m.role().size() + m.content().size() + m.name().size() + m.reasoning_content().size() +
             m.fields_json().size();
  }
  if (total > L::kChatBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("chat: ", total, " bytes of messages and template arguments, more than the ",
                     "limit of ", L::kChatBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckSampling(const v1::SamplingParams& s) {
  RETURN_IF_ERROR(CheckCount("sampling.stop", s.stop_size(), L::kStopStrings));
  size_t total = 0;
  for (const std::string& stop : s.stop()) total += stop.size();
  if (total > L::kStopStringBytes) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.stop: ", total,
                                                   " bytes in all, more than the limit of ",
                                                   L::kStopStringBytes, " bytes"));
  }
  return CheckCount("sampling.stop_token_ids", s.stop_token_ids_size(), L::kStopTokenIds);
}

}  // namespace

std::string Truncated(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return std::string(value);
  size_t cut = max_bytes;
  while (cut > 0 && IsContinuation(value[cut])) --cut;
  return absl::StrCat(value.substr(0, cut), "...(", value.size(), " bytes)");
}

absl::Status CheckBytes(absl::string_view field, absl::string_view value, size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", value.size(), " bytes, more than the limit of ", limit, " bytes"));
}

absl::Status CheckCount(absl::string_view field, size_t count, size_t limit) {
  if (count <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", count, " entries, more than the limit of ", limit));
}

absl::Status CheckGenerateRequestSizes(const v1::GenerateRequest& request) {
  RETURN_IF_ERROR(CheckBytes("request_id", request.request_id(), L::kRequestIdBytes));
  RETURN_IF_ERROR(CheckBytes("model", request.model(), L::kModelNameBytes));
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText:
      RETURN_IF_ERROR(CheckBytes("text", request.text(), L::kPromptTextBytes));
      break;
    case v1::GenerateRequest::kChat:
      RETURN_IF_ERROR(CheckChat(request.chat()));
      break;
    case v1::GenerateRequest::kTokenIds:  // bounded by max_model_len (request_validation.h)
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  return CheckSampling(request.sampling());
}

absl::Status CheckTokenizeRequestSizes(const v1::TokenizeRequest& request) {
  RETURN_IF_ERROR(CheckBytes("model", request.model(), L::kModelNameBytes));
  return CheckBytes("text", request.text(), L::kPromptTextBytes);
}

absl::Status CheckWorkerAddress(absl::string_view field, absl::string_view address) {
  if (address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": empty; give the worker's host:port"));
  }
  RETURN_IF_ERROR(CheckBytes(field, address, L::kAddressBytes));
  if (HasControlOrSpace(address)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", Truncated(address),
                     "' contains whitespace or control characters; give host:port"));
  }
  return absl::OkStatus();
}

absl::Status CheckWorkerId(absl::string_view field, absl::string_view id) {
  RETURN_IF_ERROR(CheckBytes(field, id, L::kWorkerIdBytes));
  if (HasControl(id)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": contains control characters"));
  }
  return absl::OkStatus();
}

}  // namespace tessera::api
