// Patches of the test renderer (k8s_patch.h): strategic merge by the
// Kubernetes merge keys, and JSON 6902 add / replace / remove.
#include "tests/deploy/k8s_patch.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "tests/deploy/k8s_yaml.h"

namespace tessera::testing {
namespace {

using k8s::Has;
using k8s::Scalar;

// The Kubernetes merge key of the list `field` (strategic merge), "" when the
// list is replaced as a whole.
std::string MergeKeyFor(const std::string& field, const YAML::Node& item) {
  if (field == "containers" || field == "initContainers" || field == "ephemeralContainers" ||
      field == "env" || field == "volumes" || field == "imagePullSecrets") {
    return "name";
  }
  if (field == "volumeMounts" || field == "volumeDevices") return "mountPath";
  if (field == "ports") return Has(item, "containerPort") ? "containerPort" : "port";
  return "";
}

absl::Status MergeInto(YAML::Node base, const YAML::Node& patch, const std::string& where) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const std::string here = absl::StrCat(where, "/", key);
    if (absl::StartsWith(key, "$")) {
      return absl::UnimplementedError(
          absl::StrCat(here, ": strategic-merge directives are not supported by the renderer"));
    }
    // A copy (a Node is a handle): `it->second` belongs to the temporary that
    // the iterator's operator-> returns, gone at the end of this statement.
    const YAML::Node value = it->second;
    const YAML::Node& const_base = base;
    if (value.IsNull()) {  // `key: null` deletes
      base.remove(key);
      continue;
    }
    if (!const_base[key].IsDefined()) {
      base[key] = YAML::Clone(value);
      continue;
    }
    YAML::Node current = base[key];
    if (current.IsMap() && value.IsMap()) {
      RETURN_IF_ERROR(MergeInto(current, value, here));
      continue;
    }
    if (current.IsSequence() && value.IsSequence() && value.size() > 0 &&
        !MergeKeyFor(key, value[0]).empty()) {
      for (const YAML::Node& item : value) {
        const std::string merge_key = MergeKeyFor(key, item);
        if (!item.IsMap() || !Has(item, merge_key)) {
          return absl::InvalidArgumentError(
              absl::StrCat(here, ": a list item without its merge key \"", merge_key, "\""));
        }
        const std::string id = Scalar(item, merge_key);
        bool merged = false;
        for (size_t i = 0; i < current.size(); ++i) {
          if (Scalar(current[i], merge_key) == id) {
            RETURN_IF_ERROR(MergeInto(current[i], item, absl::StrCat(here, "[", id, "]")));
            merged = true;
            break;
          }
        }
        if (!merged) current.push_back(YAML::Clone(item));
      }
      continue;
    }
    base[key] = YAML::Clone(value);
  }
  return absl::OkStatus();
}

// JSON pointer tokens ("/a/b~1c" -> {"a", "b/c"}).
absl::StatusOr<std::vector<std::string>> PointerTokens(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("JSON patch path \"", path, "\" must start /"));
  }
  std::vector<std::string> tokens = absl::StrSplit(path.substr(1), '/');
  for (std::string& t : tokens) t = absl::StrReplaceAll(t, {{"~1", "/"}, {"~0", "~"}});
  return tokens;
}

absl::StatusOr<size_t> Index(const YAML::Node& seq, const std::string& token, bool allow_end,
                             const std::string& path) {
  size_t i = 0;
  if (token == "-" && allow_end) return seq.size();
  if (!absl::SimpleAtoi(token, &i) || i > seq.size() || (i == seq.size() && !allow_end)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad index \"", token, "\" into a list of ", seq.size()));
  }
  return i;
}

absl::Status ApplyOp(YAML::Node root, const YAML::Node& op) {
  const std::string kind = Scalar(op, "op");
  const std::string path = Scalar(op, "path");
  ASSIGN_OR_RETURN(std::vector<std::string> tokens, PointerTokens(path));
  YAML::Node parent = root;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    if (parent.IsMap()) {
      const YAML::Node& c = parent;
      if (!c[tokens[t]].IsDefined()) {
        return absl::NotFoundError(absl::StrCat(path, ": no \"", tokens[t], "\""));
      }
      parent.reset(parent[tokens[t]]);
    } else if (parent.IsSequence()) {
      ASSIGN_OR_RETURN(size_t i, Index(parent, tokens[t], false, path));
      parent.reset(parent[i]);
    } else {
      return absl::NotFoundError(absl::StrCat(path, ": \"", tokens[t], "\" is not a map or list"));
    }
  }
  const std::string& last = tokens.back();
  const YAML::Node value = Has(op, "value") ? YAML::Clone(op["value"]) : YAML::Node();
  if (kind != "add" && kind != "replace" && kind != "remove") {
    return absl::UnimplementedError(
        absl::StrCat(path, ": JSON patch op \"", kind, "\" is not supported by the renderer"));
  }
  if (kind != "remove" && !Has(op, "value")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": op ", kind, " without a value"));
  }
  if (parent.IsMap()) {
    const YAML::Node& c = parent;
    if (kind != "add" && !c[last].IsDefined()) {
      return absl::NotFoundError(absl::StrCat(path, ": nothing to ", kind));
    }
    if (kind == "remove") {
      parent.remove(last);
    } else {
      parent[last] = value;
    }
    return absl::OkStatus();
  }
  if (!parent.IsSequence()) {
    return absl::NotFoundError(absl::StrCat(path, ": the parent is not a map or list"));
  }
  ASSIGN_OR_RETURN(size_t i, Index(parent, last, kind == "add", path));
  if (kind == "remove") {
    parent.remove(i);
  } else if (kind == "replace") {
    parent[i] = value;
  } else if (i == parent.size()) {
    parent.push_back(value);
  } else {  // insert before i
    YAML::Node rebuilt(YAML::NodeType::Sequence);
    for (size_t k = 0; k < parent.size(); ++k) {
      if (k == i) rebuilt.push_back(value);
      rebuilt.push_back(YAML::Clone(parent[k]));
    }
    parent = rebuilt;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<YAML::Node> StrategicMerge(const YAML::Node& base, const YAML::Node& patch) {
  YAML::Node merged = YAML::Clone(base);
  RETURN_IF_ERROR(MergeInto(merged, patch, ObjectKey(base)));
  return merged;
}

absl::StatusOr<YAML::Node> ApplyJsonPatch(const YAML::Node& base, const YAML::Node& ops) {
  if (!ops.IsSequence()) return absl::InvalidArgumentError("a JSON patch is a list of ops");
  YAML::Node patched = YAML::Clone(base);
  for (const YAML::Node& op : ops) RETURN_IF_ERROR(ApplyOp(patched, op));
  return patched;
}

}  // namespace tessera::testing
