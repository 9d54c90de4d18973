// A small, strict stand-in for `kustomize build`, so CI can check the
// Kubernetes manifests in deploy/k8s without kubectl or a cluster.
//
// It supports exactly what Tessera's kustomizations use and refuses the rest
// with an error naming the field (so a new kustomize feature in the
// manifests fails the test instead of being silently ignored):
//   resources          files (every document a Kubernetes object) and
//                      directories holding a kustomization.yaml
//   patches            `path:` files: strategic-merge patches (an object;
//                      matched by kind + metadata.name, merged by the
//                      Kubernetes merge keys of the lists it touches) and
//                      JSON 6902 patches (a list of add/replace/remove ops,
//                      with `target: {kind, name}`)
//   secretGenerator / configMapGenerator
//                      `literals:` and `files:`, with generatorOptions
//                      disableNameSuffixHash: true (hashed names are not
//                      modelled)
//   images             name / newName / newTag
// (the patches: k8s_patch.h; field helpers and ObjectKey: k8s_yaml.h).
// A patch that matches no resource, a missing file and a duplicate
// kind/name are errors.
//
// Not thread-safe (yaml-cpp nodes share state); tests call it from one thread.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/deploy/k8s_yaml.h"  // ObjectKey
#include "yaml-cpp/yaml.h"

namespace tessera::testing {

struct RenderedKustomization {
  std::vector<YAML::Node> objects;  // in resource order; generated ones last
  // Every file the render read (kustomization.yaml files, resources,
  // patches), as absolute, normalised paths.
  std::set<std::string> files;
};

// Renders the kustomization in `dir`.
absl::StatusOr<RenderedKustomization> RenderKustomization(const std::string& dir);

// Every document of a YAML file (empty documents skipped); the parse error
// names the file and line.
absl::StatusOr<std::vector<YAML::Node>> LoadYamlDocuments(const std::string& path);

}  // namespace tessera::testing
