#include "worker/server/proto_convert.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera {

absl::StatusOr<EngineRequest> EngineRequestFromProto(const v1::GenerateRequest& request,
                                                     const api::RequestLimits& limits,
                                                     const ModelText& text) {
  ASSIGN_OR_RETURN(api::ValidatedRequest v, api::ValidateGenerateRequest(request, limits, text));
  EngineRequest r;
  r.request_id = request.request_id();
  r.priority = request.priority();
  r.return_text = request.return_text();
  r.prompt_token_ids = std::move(v.prompt_token_ids);
  r.params = std::move(v.params);
  // Checked with the rest of the request by Engine::AddRequest.
  r.continued_output.assign(request.continuation().output_token_ids().begin(),
                            request.continuation().output_token_ids().end());
  for (const v1::ContinuedChoice& c : request.continuation().choices()) {
    r.continued_choices.push_back(ContinuedChoice{
        c.index(), std::vector<int32_t>(c.output_token_ids().begin(), c.output_token_ids().end())});
  }
  return r;
}

v1::FinishReason FinishReasonToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return v1::FINISH_REASON_UNSPECIFIED;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kAbort:
      return v1::FINISH_REASON_ABORT;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_ERROR;
}

void SampleResultToProto(const SampleResult& sample, v1::TokenLogprob* out) {
  out->set_token_id(sample.token);
  out->set_logprob(sample.logprob);
  for (const auto& [id, lp] : sample.top_logprobs) {
    v1::TopLogprob* top = out->add_top();
    top->set_token_id(id);
    top->set_logprob(lp);
  }
}

}  // namespace tessera
