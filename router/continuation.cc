#include "router/continuation.h"

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "common/block_hash.h"

namespace tessera::router {

absl::Status MakeResumable(v1::GenerateRequest& request, absl::BitGenRef bitgen) {
  if (request.has_continuation()) {
    return absl::InvalidArgumentError(
        "continuation is set by the router when it continues a stream on another worker; a "
        "client may not set it");
  }
  if (!request.sampling().has_seed()) {
    request.mutable_sampling()->set_seed(absl::Uniform<uint64_t>(bitgen));
  }
  return absl::OkStatus();
}

FailoverDecision DecideFailover(const FailoverFacts& f) {
  if (f.finals_delivered >= f.choices) return FailoverDecision::kComplete;
  if (f.choices != 1) return FailoverDecision::kMultipleChoices;
  if (f.delivered_tokens >= f.max_tokens) return FailoverDecision::kNothingLeft;
  if (f.failovers_done >= f.max_failovers) return FailoverDecision::kNoFailoversLeft;
  return FailoverDecision::kContinue;
}

std::string FailoverRefusal(FailoverDecision decision, const FailoverFacts& f) {
  switch (decision) {
    case FailoverDecision::kContinue:
    case FailoverDecision::kComplete:
      return "";
    case FailoverDecision::kMultipleChoices:
      return absl::StrCat("not continued: requests with n > 1 (n = ", f.choices,
                          ") fail over only before their first token");
    case FailoverDecision::kNoFailoversLeft:
      return absl::StrCat("not continued: --max-failovers (", f.max_failovers, ") reached");
    case FailoverDecision::kNothingLeft:
      return absl::StrCat("not continued: all ", f.max_tokens,
                          " max_tokens were delivered without a final message");
  }
  return "";
}

v1::GenerateRequest ContinuationRequest(const v1::GenerateRequest& original,
                                        std::span<const int32_t> delivered) {
  v1::GenerateRequest next = original;
  next.set_return_prompt_token_ids(false);
  next.mutable_continuation()->mutable_output_token_ids()->Assign(delivered.begin(),
                                                                  delivered.end());
  return next;
}

std::vector<uint64_t> ContinuationBlockHashes(const v1::GenerateRequest& original,
                                              std::span<const int32_t> delivered, int block_size) {
  if (block_size <= 0) return {};
  std::vector<int32_t> tokens(original.token_ids().ids().begin(), original.token_ids().ids().end());
  tokens.insert(tokens.end(), delivered.begin(), delivered.end());
  return HashFullBlocks(tokens, block_size);
}

}  // namespace tessera::router
