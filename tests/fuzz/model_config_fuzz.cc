// Fuzz target: a model's config.json (ParseModelConfig), as the worker reads
// it from a model directory. Any bytes must give a ModelConfig or an error
// Status; a parsed config must pass Validate(), as ParseModelConfig promises.
#include "absl/strings/string_view.h"
#include "tests/fuzz/fuzz_target.h"
#include "worker/model/model_config.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<tessera::ModelConfig> config =
      tessera::ParseModelConfig(text, "config.json");
  if (config.ok()) TESSERA_FUZZ_CHECK(config->Validate().ok());
  return 0;
}
