// WorkerPool and the cluster's parameters (router/cluster_params.h): each
// poll that reaches a worker checks what it reports and updates its vote;
// the pool's block size, model and tokenizer are the vote's adopted ones.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "router/worker_pool.h"
#include "router/worker_pool_impl.h"

namespace tessera::router {

std::string WorkerPool::Impl::JudgeParamsLocked(WorkerRecord& e, const std::string& text_error,
                                                absl::Time now, bool* refused) {
  *refused = false;
  if (!e.model.has_value()) return "its model is not known yet (ListModels)";
  const ClusterParams params{e.report.block_size(), *e.model};
  if (absl::Status s = ValidateReportedParams(params); !s.ok()) {
    // Never counts: an absurd report must not sway the cluster.
    vote.Erase(e.slot);
    ElectLocked(absl::StrCat("worker ", e.id, " reports invalid parameters"));
    *refused = true;
    return absl::StrCat("refused: it reports ", s.message());
  }
  if (std::string why = Disagreement(params, vote.pin(), std::nullopt); !why.empty()) {
    vote.Erase(e.slot);  // the operator's values rule it out (its tokenizer may not be loaded)
    ElectLocked(absl::StrCat("worker ", e.id, " differs from the pinned parameters"));
    *refused = true;
    return absl::StrCat("refused: ", why);
  }
  if (e.text == nullptr) {  // it cannot serve without its tokenizer: no vote
    vote.Erase(e.slot);
    ElectLocked(absl::StrCat("worker ", e.id, " has no tokenizer loaded"));
    return text_error.empty() ? std::string("its tokenizer is not loaded yet") : text_error;
  }
  vote.Set(e.slot, params, e.text, now);
  ElectLocked(absl::StrCat("worker ", e.id, " reported"));
  if (std::string why = Disagreement(params, vote.pin(), vote.adopted()); !why.empty()) {
    *refused = true;
    return absl::StrCat("refused: ", why);
  }
  return "";
}

void WorkerPool::Impl::ElectLocked(absl::string_view why) {
  const std::optional<ClusterParams> before = vote.adopted();
  if (!vote.Elect()) return;
  const ClusterParams& now = *vote.adopted();
  auto describe = [](const ClusterParams& p) {
    return absl::StrCat("block size ", p.block_size, ", model '", p.model.id(), "' (max_model_len ",
                        p.model.max_model_len(), ", vocab ", p.model.vocab_size(), ")");
  };
  if (before.has_value()) {
    spdlog::warn(
        "cluster parameters changed ({}): from {} to {}, reported by {} of {} reachable "
        "worker(s); workers that differ are refused",
        why, describe(*before), describe(now), vote.adopted_votes(), vote.reachable_votes());
  } else {
    spdlog::info("cluster parameters: {}, reported by {} of {} reachable worker(s)", describe(now),
                 vote.adopted_votes(), vote.reachable_votes());
  }
}

int WorkerPool::block_size() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->vote.adopted().has_value() ? impl_->vote.adopted()->block_size : 0;
}

std::optional<v1::ModelInfo> WorkerPool::model_info() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  if (!impl_->vote.adopted().has_value()) return std::nullopt;
  return impl_->vote.adopted()->model;
}

std::shared_ptr<const ModelText> WorkerPool::model_text() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->vote.adopted_text();
}

}  // namespace tessera::router
