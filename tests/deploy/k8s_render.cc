// The test renderer of k8s_render.h: kustomizations, their resources,
// generators and images; the patches themselves are in k8s_patch.cc.
#include "tests/deploy/k8s_render.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tests/deploy/k8s_patch.h"
#include "tests/deploy/k8s_yaml.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using k8s::Has;
using k8s::Scalar;

absl::Status CheckObject(const YAML::Node& doc, const std::string& where) {
  if (!doc.IsMap()) return absl::InvalidArgumentError(absl::StrCat(where, ": not a map"));
  for (const char* field : {"apiVersion", "kind"}) {
    if (Scalar(doc, field).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": no ", field));
    }
  }
  if (!Has(doc, "metadata") || Scalar(doc["metadata"], "name").empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no metadata.name"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot read"));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// One generated Secret or ConfigMap.
absl::StatusOr<YAML::Node> Generate(const fs::path& dir, const YAML::Node& spec,
                                    const std::string& kind, bool hashed,
                                    std::set<std::string>* files) {
  const std::string name = Scalar(spec, "name");
  if (name.empty()) return absl::InvalidArgumentError(kind + " generator without a name");
  if (hashed) {
    return absl::UnimplementedError(absl::StrCat(
        kind, " ", name,
        ": hashed generator names are not modelled; set generatorOptions.disableNameSuffixHash"));
  }
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (key != "name" && key != "literals" && key != "files" && key != "type") {
      return absl::UnimplementedError(
          absl::StrCat(kind, " generator ", name, ": field \"", key, "\" is not supported"));
    }
  }
  YAML::Node object;
  object["apiVersion"] = "v1";
  object["kind"] = kind;
  object["metadata"]["name"] = name;
  if (kind == "Secret")
    object["type"] = Scalar(spec, "type").empty() ? "Opaque" : Scalar(spec, "type");
  YAML::Node data(YAML::NodeType::Map);
  if (Has(spec, "literals")) {
    for (const YAML::Node& literal : spec["literals"]) {
      const std::string text = literal.as<std::string>();
      const size_t eq = text.find('=');
      if (eq == std::string::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(kind, " ", name, ": literal \"", text, "\" is not KEY=VALUE"));
      }
      data[text.substr(0, eq)] = text.substr(eq + 1);
    }
  }
  if (Has(spec, "files")) {
    for (const YAML::Node& file : spec["files"]) {
      std::string text = file.as<std::string>();
      std::string key = fs::path(text).filename().string();
      if (const size_t eq = text.find('='); eq != std::string::npos) {
        key = text.substr(0, eq);
        text = text.substr(eq + 1);
      }
      const fs::path path = fs::weakly_canonical(dir / text);
      ASSIGN_OR_RETURN(std::string content, ReadFile(path));
      files->insert(path.string());
      data[key] = content;
    }
  }
  object[kind == "Secret" ? "stringData" : "data"] = data;
  return object;
}

absl::Status RenderInto(const fs::path& dir, RenderedKustomization* out, int depth) {
  if (depth > 16) return absl::InvalidArgumentError("kustomizations nest too deep (a cycle?)");
  fs::path kfile = dir / "kustomization.yaml";
  if (!fs::exists(kfile)) kfile = dir / "kustomization.yml";
  if (!fs::exists(kfile)) {
    return absl::NotFoundError(absl::StrCat(dir.string(), ": no kustomization.yaml"));
  }
  kfile = fs::weakly_canonical(kfile);
  out->files.insert(kfile.string());
  ASSIGN_OR_RETURN(std::vector<YAML::Node> docs, LoadYamlDocuments(kfile.string()));
  if (docs.size() != 1 || !docs[0].IsMap()) {
    return absl::InvalidArgumentError(kfile.string() + ": must hold exactly one map");
  }
  const YAML::Node k = docs[0];
  if (Scalar(k, "apiVersion") != "kustomize.config.k8s.io/v1beta1" ||
      Scalar(k, "kind") != "Kustomization") {
    return absl::InvalidArgumentError(
        kfile.string() + ": apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization");
  }
  static const std::set<std::string> kSupported = {
      "apiVersion",       "kind",  "resources", "patches", "secretGenerator", "configMapGenerator",
      "generatorOptions", "images"};
  for (auto it = k.begin(); it != k.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (!kSupported.contains(key)) {
      return absl::UnimplementedError(
          absl::StrCat(kfile.string(), ": \"", key,
                       "\" is not supported by the test renderer (tests/deploy/k8s_render.cc)"));
    }
  }

  const size_t first = out->objects.size();
  if (Has(k, "resources")) {
    for (const YAML::Node& r : k["resources"]) {
      const fs::path path = fs::weakly_canonical(dir / r.as<std::string>());
      if (!fs::exists(path)) {
        return absl::NotFoundError(
            absl::StrCat(kfile.string(), ": resource ", r.as<std::string>(), " does not exist"));
      }
      if (fs::is_directory(path)) {
        RETURN_IF_ERROR(RenderInto(path, out, depth + 1));
        continue;
      }
      out->files.insert(path.string());
      ASSIGN_OR_RETURN(std::vector<YAML::Node> objects, LoadYamlDocuments(path.string()));
      for (size_t i = 0; i < objects.size(); ++i) {
        RETURN_IF_ERROR(CheckObject(objects[i], absl::StrCat(path.string(), " document ", i)));
        out->objects.push_back(objects[i]);
      }
    }
  }

  bool hashed = true;
  if (Has(k, "generatorOptions")) {
    const YAML::Node options = k["generatorOptions"];
    for (auto it = options.begin(); it != options.end(); ++it) {
      if (it->first.as<std::string>() != "disableNameSuffixHash") {
        return absl::UnimplementedError(absl::StrCat(kfile.string(), ": generatorOptions.",
                                                     it->first.as<std::string>(),
                                                     " is not supported"));
      }
    }
    hashed =
        !(Has(options, "disableNameSuffixHash") && options["disableNameSuffixHash"].as<bool>());
  }
  for (const auto& [field, kind] :
       {std::pair<std::string, std::string>{"secretGenerator", "Secret"},
        {"configMapGenerator", "ConfigMap"}}) {
    if (!Has(k, field)) continue;
    for (const YAML::Node& spec : k[field]) {
      ASSIGN_OR_RETURN(YAML::Node object, Generate(dir, spec, kind, hashed, &out->files));
      out->objects.push_back(object);
    }
  }

  if (Has(k, "patches")) {
    for (const YAML::Node& p : k["patches"]) {
      if (!Has(p, "path")) {
        return absl::UnimplementedError(
            kfile.string() + ": only `path:` patches are supported by the test renderer");
      }
      const fs::path path = fs::weakly_canonical(dir / p["path"].as<std::string>());
      if (!fs::exists(path)) {
        return absl::NotFoundError(absl::StrCat(kfile.string(), ": patch ",
                                                p["path"].as<std::string>(), " does not exist"));
      }
      out->files.insert(path.string());
      ASSIGN_OR_RETURN(std::vector<YAML::Node> patch_docs, LoadYamlDocuments(path.string()));
      if (patch_docs.size() != 1) {
        return absl::InvalidArgumentError(path.string() + ": a patch file holds one document");
      }
      const YAML::Node patch = patch_docs[0];
      std::string target_kind, target_name;
      if (Has(p, "target")) {
        target_kind = Scalar(p["target"], "kind");
        target_name = Scalar(p["target"], "name");
      } else if (patch.IsMap()) {
        target_kind = Scalar(patch, "kind");
        target_name = Has(patch, "metadata") ? Scalar(patch["metadata"], "name") : "";
      }
      if (target_kind.empty() || target_name.empty()) {
        return absl::InvalidArgumentError(path.string() +
                                          ": the patch names no target kind and name");
      }
      int matched = 0;
      // Patches apply to what this kustomization and its resources built.
      for (size_t i = first; i < out->objects.size(); ++i) {
        YAML::Node& object = out->objects[i];
        if (Scalar(object, "kind") != target_kind ||
            Scalar(object["metadata"], "name") != target_name) {
          continue;
        }
        ++matched;
        if (patch.IsSequence()) {
          absl::StatusOr<YAML::Node> patched = ApplyJsonPatch(object, patch);
          if (!patched.ok()) {
            return absl::Status(patched.status().code(),
                                path.string() + ": " + std::string(patched.status().message()));
          }
          object.reset(*patched);
        } else if (patch.IsMap()) {
          absl::StatusOr<YAML::Node> merged = StrategicMerge(object, patch);
          if (!merged.ok()) {
            return absl::Status(merged.status().code(),
                                path.string() + ": " + std::string(merged.status().message()));
          }
          object.reset(*merged);
        } else {
          return absl::InvalidArgumentError(path.string() + ": a patch is a map or a list");
        }
      }
      if (matched == 0) {
        return absl::NotFoundError(absl::StrCat(path.string(), ": patches ", target_kind, "/",
                                                target_name, ", which the kustomization in ",
                                                dir.string(), " does not have"));
      }
    }
  }

  if (Has(k, "images")) {
    for (const YAML::Node& image : k["images"]) {
      const std::string name = Scalar(image, "name");
      if (name.empty()) return absl::InvalidArgumentError(kfile.string() + ": image without name");
      int matched = 0;
      for (size_t i = first; i < out->objects.size(); ++i) {
        const YAML::Node& object = out->objects[i];
        if (!Has(object, "spec") || !Has(object["spec"], "template") ||
            !Has(object["spec"]["template"], "spec")) {
          continue;
        }
        YAML::Node spec = out->objects[i]["spec"]["template"]["spec"];
        if (!spec.IsMap() || !Has(spec, "containers")) continue;
        for (YAML::Node c : spec["containers"]) {
          const std::string current = Scalar(c, "image");
          const size_t colon = current.rfind(':');
          const std::string repo = colon == std::string::npos ? current : current.substr(0, colon);
          const std::string tag = colon == std::string::npos ? "" : current.substr(colon + 1);
          if (repo != name) continue;
          ++matched;
          const std::string new_repo =
              Scalar(image, "newName").empty() ? repo : Scalar(image, "newName");
          const std::string new_tag =
              Scalar(image, "newTag").empty() ? tag : Scalar(image, "newTag");
          c["image"] = new_tag.empty() ? new_repo : absl::StrCat(new_repo, ":", new_tag);
        }
      }
      if (matched == 0) {
        return absl::NotFoundError(
            absl::StrCat(kfile.string(), ": images entry ", name, " matches no container"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<YAML::Node>> LoadYamlDocuments(const std::string& path) {
  try {
    std::vector<YAML::Node> docs;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(path)) {
      if (doc.IsNull()) continue;
      docs.push_back(doc);
    }
    return docs;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::StatusOr<RenderedKustomization> RenderKustomization(const std::string& dir) {
  RenderedKustomization out;
  try {
    RETURN_IF_ERROR(RenderInto(fs::weakly_canonical(dir), &out, 0));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": ", e.what()));
  }
  std::set<std::string> keys;
  for (const YAML::Node& object : out.objects) {
    if (!keys.insert(ObjectKey(object)).second) {
      return absl::AlreadyExistsError(absl::StrCat(dir, ": ", ObjectKey(object), " twice"));
    }
  }
  return out;
}

}  // namespace tessera::testing
