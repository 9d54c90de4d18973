#include "router/continuation.h"

#include <algorithm>

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

namespace {

// The choice a continuation is placed by: the first without its final message.
const DeliveredChoice* FirstUnfinished(std::span<const DeliveredChoice> delivered) {
  for (const DeliveredChoice& c : delivered) {
    if (!c.finished) return &c;
  }
  return nullptr;
}

}  // namespace

FailoverFacts FailoverFacts::Of(std::span<const DeliveredChoice> delivered, int failovers_done,
                                int max_failovers, int64_t max_tokens) {
  FailoverFacts f;
  f.choices = static_cast<int>(delivered.size());
  f.failovers_done = failovers_done;
  f.max_failovers = max_failovers;
  f.max_tokens = max_tokens;
  for (const DeliveredChoice& c : delivered) {
    const auto tokens = static_cast<int64_t>(c.token_ids.size());
    f.delivered_tokens += tokens;
    if (c.finished) {
      ++f.finals_delivered;
    } else {
      f.longest_unfinished = std::max(f.longest_unfinished, tokens);
    }
  }
  return f;
}

FailoverDecision DecideFailover(const FailoverFacts& f) {
  if (f.finals_delivered >= f.choices) return FailoverDecision::kComplete;
  if (f.longest_unfinished >= f.max_tokens) return FailoverDecision::kNothingLeft;
  if (f.failovers_done >= f.max_failovers) return FailoverDecision::kNoFailoversLeft;
  return FailoverDecision::kContinue;
}

std::string FailoverRefusal(FailoverDecision decision, const FailoverFacts& f) {
  switch (decision) {
    case FailoverDecision::kContinue:
    case FailoverDecision::kComplete:
      return "";
    case FailoverDecision::kNoFailoversLeft:
      return absl::StrCat("not continued: --max-failovers (", f.max_failovers, ") reached");
    case FailoverDecision::kNothingLeft:
      return absl::StrCat("not continued: all ", f.max_tokens,
                          " max_tokens of a choice were delivered without its final message");
  }
  return "";
}

v1::GenerateRequest ContinuationRequest(const v1::GenerateRequest& original,
                                        std::span<const DeliveredChoice> delivered) {
  v1::GenerateRequest next = original;
  next.set_return_prompt_token_ids(false);
  v1::Continuation& continuation = *next.mutable_continuation();
  if (delivered.size() == 1) {
    continuation.mutable_output_token_ids()->Assign(delivered[0].token_ids.begin(),
                                                    delivered[0].token_ids.end());
    return next;
  }
  for (size_t i = 0; i < delivered.size(); ++i) {
    if (delivered[i].finished) continue;
    v1::ContinuedChoice& choice = *continuation.add_choices();
    choice.set_index(static_cast<int32_t>(i));
    choice.mutable_output_token_ids()->Assign(delivered[i].token_ids.begin(),
                                              delivered[i].token_ids.end());
  }
  return next;
}

std::vector<uint64_t> ContinuationBlockHashes(const v1::GenerateRequest& original,
                                              std::span<const DeliveredChoice> delivered,
                                              int block_size) {
  if (block_size <= 0) return {};
  std::vector<int32_t> tokens(original.token_ids().ids().begin(), original.token_ids().ids().end());
  if (const DeliveredChoice* c = FirstUnfinished(delivered); c != nullptr) {
    tokens.insert(tokens.end(), c->token_ids.begin(), c->token_ids.end());
  }
  return HashFullBlocks(tokens, block_size);
}

}  // namespace tessera::router
