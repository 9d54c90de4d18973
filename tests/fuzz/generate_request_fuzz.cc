// Fuzz target: a tessera.v1.GenerateRequest as it arrives on the wire (proto
// bytes), through the admission checks of the worker (ValidateGenerateRequest
// as sent) and of the router (an unset max_tokens filled from the prompt
// first, as RequestIntake does), against stories260K's tokenizer and a chat
// template. Bytes that do not parse are dropped, as gRPC drops them. Every
// outcome is a ValidatedRequest or INVALID_ARGUMENT / NOT_FOUND; a validated
// request has a non-empty prompt of ids inside the vocabulary that fits
// max_model_len together with max_tokens.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/api/request_validation.h"
#include "common/model_text.h"
#include "google/protobuf/stubs/logging.h"
#include "tessera/v1/llm.pb.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

namespace api = tessera::api;
namespace v1 = tessera::v1;

const tessera::ModelText* g_text = nullptr;
api::RequestLimits g_limits;

std::string SharedDir() {
  const char* dir = std::getenv("TESSERA_SHARED_DIR");
  return dir != nullptr && dir[0] != '\0' ? dir : TESSERA_SHARED_DIR;
}

void CheckOutcome(const absl::StatusOr<api::ValidatedRequest>& valid) {
  if (!valid.ok()) {
    const absl::StatusCode code = valid.status().code();
    TESSERA_FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument ||
                       code == absl::StatusCode::kNotFound);
    return;
  }
  TESSERA_FUZZ_CHECK(!valid->prompt_token_ids.empty());
  for (const int32_t id : valid->prompt_token_ids) {
    TESSERA_FUZZ_CHECK(id >= 0 && id < g_limits.vocab_size);
  }
  TESSERA_FUZZ_CHECK(static_cast<int64_t>(valid->prompt_token_ids.size()) +
                         valid->params.max_tokens <=
                     g_limits.max_model_len);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in a string field fails the parse with a log line per input.
  google::protobuf::SetLogHandler(nullptr);
  const std::string stories = SharedDir() + "/models/stories260K";
  auto text = tessera::ModelText::LoadFromDir(
      stories, TESSERA_SOURCE_DIR "/tests/data/stories260k_chat.jinja", /*byte_vocab_size=*/512);
  if (!text.ok()) {
    std::fprintf(stderr, "generate_request_fuzz: %s\n", text.status().ToString().c_str());
    std::abort();
  }
  static const std::shared_ptr<const tessera::ModelText> keep = *std::move(text);
  g_text = keep.get();
  // stories260K as a worker serves it (config.json: vocab_size and
  // max_position_embeddings 512), with the default logprobs/stop/n limits.
  g_limits.model_name = "stories260K";
  g_limits.vocab_size = 512;
  g_limits.max_model_len = 512;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  // The worker: the request as it came.
  CheckOutcome(api::ValidateGenerateRequest(request, g_limits, *g_text));
  // The router: an unset max_tokens becomes what fits after the prompt.
  if (!request.sampling().has_max_tokens()) {
    const absl::StatusOr<std::vector<int32_t>> ids = g_text->PromptIds(request);
    if (!ids.ok()) return 0;
    request.mutable_token_ids()->mutable_ids()->Assign(ids->begin(), ids->end());
    api::FillDefaultMaxTokens(request, static_cast<int64_t>(ids->size()), g_limits.max_model_len);
    CheckOutcome(api::ValidateGenerateRequest(request, g_limits, *g_text));
  }
  return 0;
}
