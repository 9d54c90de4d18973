// Field helpers over Kubernetes objects held as yaml-cpp nodes, shared by the
// test renderer (k8s_render.cc) and its patches (k8s_patch.cc). They read
// through const references: yaml-cpp's non-const operator[] would insert the
// key. Not thread-safe (yaml-cpp nodes share state).
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace tessera::testing {
namespace k8s {

// node[key] as a string when it is a scalar of a map, else "".
inline std::string Scalar(const YAML::Node& node, const std::string& key) {
  const YAML::Node& n = node;
  if (!n.IsMap() || !n[key] || !n[key].IsScalar()) return "";
  return n[key].as<std::string>();
}

// Whether `node` is a map holding `key`.
inline bool Has(const YAML::Node& node, const std::string& key) {
  const YAML::Node& n = node;
  return n.IsMap() && n[key].IsDefined();
}

}  // namespace k8s

// "Kind/name" of an object.
inline std::string ObjectKey(const YAML::Node& object) {
  const std::string name =
      k8s::Has(object, "metadata") ? k8s::Scalar(object["metadata"], "name") : "";
  return absl::StrCat(k8s::Scalar(object, "kind"), "/", name);
}

}  // namespace tessera::testing
