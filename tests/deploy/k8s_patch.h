// The patches of the test renderer (k8s_render.h), applied to one Kubernetes
// object held as a yaml-cpp node: strategic-merge patches (matched lists are
// merged by their Kubernetes merge keys: containers, env, volumes, ... by
// name, volumeMounts by mountPath, ports by containerPort or port) and JSON
// 6902 patches (add, replace, remove). Anything else is an error naming the
// field. Not thread-safe (yaml-cpp nodes share state).
#pragma once

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace tessera::testing {

// Applies a strategic-merge patch to a deep copy of `base` and returns it.
// `$patch` / `$setElementOrder` directives are errors.
absl::StatusOr<YAML::Node> StrategicMerge(const YAML::Node& base, const YAML::Node& patch);

// Applies JSON 6902 operations (add, replace, remove) to a deep copy of `base`.
absl::StatusOr<YAML::Node> ApplyJsonPatch(const YAML::Node& base, const YAML::Node& ops);

}  // namespace tessera::testing
