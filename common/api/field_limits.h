// Size limits on the strings and lists that clients and workers send, checked
// in one place by every front end (the router's gRPC Llm service and OpenAI
// HTTP API, the worker's services, the router's Admin and Registry
// services), before anything else reads, copies or echoes them.
//
// A field over its limit is INVALID_ARGUMENT naming the field, its size and
// the limit ("request_id: 1048576 bytes, more than the limit of 256 bytes");
// the message never contains the value itself. Values that are echoed in
// other error messages go through Truncated() first.
//
// These are hard ceilings against abuse, well above what any sane request
// needs; the model-dependent limits (max_model_len, vocabulary, max_stop,
// max_logprobs, max_n) are checked afterwards by request_validation.h.
//
// Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tessera/v1/llm.pb.h"

namespace tessera::api {

struct FieldLimits {
  static constexpr size_t kRequestIdBytes = 256;  // GenerateRequest.request_id
  static constexpr size_t kModelNameBytes = 256;  // GenerateRequest.model, TokenizeRequest.model
  static constexpr size_t kPromptTextBytes = 4 << 20;  // GenerateRequest.text, TokenizeRequest.text
  static constexpr size_t kStopStrings = 64;           // sampling.stop entries (wire ceiling)
  static constexpr size_t kStopStringBytes = 4096;     // all of sampling.stop together
  static constexpr size_t kStopTokenIds = 1024;        // sampling.stop_token_ids entries
  static constexpr size_t kChatMessages = 4096;        // chat.messages entries
  static constexpr size_t kChatBytes = 4 << 20;        // all chat text (content, names, JSON)
  static constexpr size_t kChatRoleBytes = 64;         // chat.messages[i].role
  static constexpr size_t kChatNameBytes = 256;        // chat.messages[i].name
  static constexpr size_t kWorkerIdBytes = 256;        // worker ids (admin, registry)
  static constexpr size_t kAddressBytes = 512;         // host:port, dns:///name:port
  // How much of a value an error message may quote.
  static constexpr size_t kEchoBytes = 64;
};

// `value` cut to at most `max_bytes` bytes (never inside a UTF-8 sequence),
// with "...(N bytes)" appended when it was cut; for quoting client input in
// error messages.
std::string Truncated(absl::string_view value, size_t max_bytes = FieldLimits::kEchoBytes);

// INVALID_ARGUMENT "<field>: N bytes, more than the limit of L bytes" when
// value.size() > limit.
absl::Status CheckBytes(absl::string_view field, absl::string_view value, size_t limit);
// INVALID_ARGUMENT "<field>: N entries, more than the limit of L" when
// count > limit.
absl::Status CheckCount(absl::string_view field, size_t count, size_t limit);

// Every size limit of a GenerateRequest: request_id, model, text, the chat
// messages (count, role, name, total bytes) and the sampling lists (stop
// count and total bytes, stop_token_ids count).
absl::Status CheckGenerateRequestSizes(const v1::GenerateRequest& request);
// TokenizeRequest: model and text.
absl::Status CheckTokenizeRequestSizes(const v1::TokenizeRequest& request);

// A worker address (host:port) as the Admin and Registry services take it:
// non-empty, within kAddressBytes, no whitespace or control characters.
// `field` names it in the message ("address").
absl::Status CheckWorkerAddress(absl::string_view field, absl::string_view address);
// A worker id: within kWorkerIdBytes, no control characters; empty is
// allowed where the caller gives it a meaning (registration: "use the
// address").
absl::Status CheckWorkerId(absl::string_view field, absl::string_view id);

}  // namespace tessera::api
