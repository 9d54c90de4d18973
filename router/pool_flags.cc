// tessera-router's flags for worker registration limits and the cluster's
// pinned parameters (router/cluster_params.h), applied by
// RouterOptionsFromFlags (flags.cc). Linked into the binary only.
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "router/flags.h"

ABSL_FLAG(int, max_registered_workers, 256,
          "Most workers registered through Registry.RegisterWorker at once; more are refused "
          "(RESOURCE_EXHAUSTED). --workers, DNS and admin-added workers do not count");
ABSL_FLAG(double, registration_rate, 10,
          "New worker registrations accepted per second (a worker registering again is not "
          "new); more are refused with RESOURCE_EXHAUSTED and retried by the worker");
ABSL_FLAG(int, registration_burst, 20, "Registrations accepted at once above --registration-rate");
ABSL_FLAG(int, block_size, 0,
          "The KV block size every worker must report (0: the majority of the workers')");
ABSL_FLAG(int, max_model_len, 0,
          "The max_model_len every worker must report (0: the majority of the workers')");
ABSL_FLAG(int, vocab_size, 0,
          "The vocab_size every worker must report (0: the majority of the workers')");
ABSL_FLAG(std::string, model_id, "",
          "The model id every worker must serve (empty: the majority of the workers')");
ABSL_FLAG(std::string, tokenizer_hash, "",
          "The tokenizer hash every worker must report (Llm.ListModels; empty: the majority "
          "of the workers')");

namespace tessera::router {

absl::Status ApplyPoolFlags(WorkerPoolOptions& pool) {
  pool.max_registered_workers = absl::GetFlag(FLAGS_max_registered_workers);
  pool.registration_rate = absl::GetFlag(FLAGS_registration_rate);
  pool.registration_burst = absl::GetFlag(FLAGS_registration_burst);
  if (pool.max_registered_workers < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-registered-workers must not be negative, got ", pool.max_registered_workers));
  }
  if (!(pool.registration_rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--registration-rate must be above 0, got ", pool.registration_rate));
  }
  if (pool.registration_burst < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--registration-burst must be at least 1, got ", pool.registration_burst));
  }
  ClusterParamsPin& pin = pool.cluster_params;
  if (const int v = absl::GetFlag(FLAGS_block_size); v != 0) pin.block_size = v;
  if (const int v = absl::GetFlag(FLAGS_max_model_len); v != 0) pin.max_model_len = v;
  if (const int v = absl::GetFlag(FLAGS_vocab_size); v != 0) pin.vocab_size = v;
  if (std::string v = absl::GetFlag(FLAGS_model_id); !v.empty()) pin.model_id = std::move(v);
  if (std::string v = absl::GetFlag(FLAGS_tokenizer_hash); !v.empty()) {
    pin.tokenizer_hash = std::move(v);
  }
  return pin.Validate();
}

}  // namespace tessera::router
