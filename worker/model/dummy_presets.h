// The `--dummy` presets: named real model shapes (and a tiny test model) to
// run with random weights, as ModelConfigs.
//
// Thread-safety: pure functions over a constant table.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/model/model_config.h"

namespace tessera {

// The config of a `--dummy` preset (see DummyPresetNames): real model shapes
// with the byte tokenizer's special ids (bos 1, eos 2). NOT_FOUND listing the
// presets for an unknown name.
absl::StatusOr<ModelConfig> DummyModelConfig(absl::string_view preset);
// "tiny", "smollm2-135m", "qwen3-0.6b", "qwen3-tiny", "llama3-8b".
std::vector<std::string> DummyPresetNames();

}  // namespace tessera
