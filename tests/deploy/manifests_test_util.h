// Shared helpers of the deployment checks (manifests_test.cc,
// manifests_render_test.cc): YAML accessors, rendered kustomizations as
// views of their workloads and containers, the binaries' --help, and the
// files under deploy/k8s. Test-only; every function is inline.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/deploy/command_flags.h"
#include "tests/deploy/k8s_render.h"
#include "tests/testing/subprocess.h"

namespace tessera::testing::deploy {

namespace fs = std::filesystem;

inline std::string SourceDir() { return TESSERA_SOURCE_DIR; }
inline std::string K8sDir() { return SourceDir() + "/deploy/k8s"; }
inline std::string LaunchScript() { return SourceDir() + "/deploy/launch-replica.sh"; }

inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
inline std::string WorkerBinary() {
  return EnvOr("TESSERA_WORKER_BINARY", std::string(TESSERA_BINARY_DIR) + "/worker/tessera-worker");
}
inline std::string RouterBinary() {
  return EnvOr("TESSERA_ROUTER_BINARY", std::string(TESSERA_BINARY_DIR) + "/router/tessera-router");
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ---- small YAML accessors ------------------------------------------------

inline std::string Str(const YAML::Node& n, const std::string& key) {
  const YAML::Node& c = n;
  if (!c.IsMap() || !c[key] || !c[key].IsScalar()) return "";
  return c[key].as<std::string>();
}
inline bool Has(const YAML::Node& n, const std::string& key) {
  const YAML::Node& c = n;
  return c.IsMap() && c[key].IsDefined() && !c[key].IsNull();
}
// An undefined node: what Get/Path return for a missing key (IsDefined() false).
inline YAML::Node Missing() { return YAML::Node(YAML::NodeType::Undefined); }
inline YAML::Node Get(const YAML::Node& n, const std::string& key) {
  const YAML::Node& c = n;
  return c.IsMap() && c[key] ? YAML::Node(c[key]) : Missing();
}
inline YAML::Node Path(const YAML::Node& n, const std::vector<std::string>& keys) {
  YAML::Node cur = n;
  for (const std::string& k : keys) {
    if (!Has(cur, k)) return Missing();
    cur.reset(Get(cur, k));
  }
  return cur;
}
inline std::optional<int64_t> Int(const YAML::Node& n) {
  int64_t v = 0;
  if (!n.IsDefined() || !n.IsScalar() || !absl::SimpleAtoi(n.as<std::string>(), &v)) {
    return std::nullopt;
  }
  return v;
}
inline std::map<std::string, std::string> StringMap(const YAML::Node& n) {
  std::map<std::string, std::string> out;
  if (!n.IsMap()) return out;
  for (auto it = n.begin(); it != n.end(); ++it) {
    out[it->first.as<std::string>()] = it->second.IsScalar() ? it->second.as<std::string>() : "";
  }
  return out;
}
inline bool Subset(const std::map<std::string, std::string>& a,
                   const std::map<std::string, std::string>& b) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) return false;
  }
  return true;
}
inline std::string Name(const YAML::Node& object) { return Str(Get(object, "metadata"), "name"); }

// ---- the rendered cluster, indexed ---------------------------------------

struct ContainerView {
  std::string where;    // "StatefulSet/tessera-worker container worker"
  YAML::Node workload;  // the Deployment / StatefulSet
  YAML::Node pod_spec;  // spec.template.spec
  YAML::Node container;
  std::map<std::string, YAML::Node> env;  // by name
  std::vector<std::string> words;         // command + args ($(VAR) kept)
  std::vector<Invocation> invocations;
};

struct Render {
  std::string dir;
  RenderedKustomization k;
  std::vector<ContainerView> containers;

  std::vector<YAML::Node> OfKind(const std::string& kind) const {
    std::vector<YAML::Node> out;
    for (const YAML::Node& o : k.objects) {
      if (Str(o, "kind") == kind) out.push_back(o);
    }
    return out;
  }
  std::optional<YAML::Node> Find(const std::string& kind, const std::string& name) const {
    for (const YAML::Node& o : k.objects) {
      if (Str(o, "kind") == kind && Name(o) == name) return o;
    }
    return std::nullopt;
  }
  std::vector<YAML::Node> Workloads() const {
    std::vector<YAML::Node> out = OfKind("Deployment");
    for (const YAML::Node& s : OfKind("StatefulSet")) out.push_back(s);
    return out;
  }
  const ContainerView* Running(Program p) const {
    for (const ContainerView& c : containers) {
      for (const Invocation& inv : c.invocations) {
        if (inv.program == p) return &c;
      }
    }
    return nullptr;
  }
};

inline std::vector<std::string> Words(const YAML::Node& container) {
  std::vector<std::string> words;
  for (const char* field : {"command", "args"}) {
    const YAML::Node list = Get(container, field);
    if (!list.IsSequence()) continue;
    for (const YAML::Node& w : list) words.push_back(w.as<std::string>());
  }
  // `sh -c "SCRIPT"`: the script's words.
  if (words.size() >= 3 &&
      (fs::path(words[0]).filename() == "sh" || fs::path(words[0]).filename() == "bash") &&
      words[1] == "-c") {
    return ShellSplit(words[2]);
  }
  return words;
}

inline Render MakeRender(const std::string& dir, RenderedKustomization k) {
  Render r;
  r.dir = dir;
  r.k = std::move(k);
  for (const YAML::Node& w : r.Workloads()) {
    const YAML::Node pod = Path(w, {"spec", "template", "spec"});
    const YAML::Node containers = Get(pod, "containers");
    if (!containers.IsSequence()) continue;
    for (const YAML::Node& c : containers) {
      ContainerView v;
      v.where = absl::StrCat(ObjectKey(w), " container ", Str(c, "name"), " (", dir, ")");
      v.workload.reset(w);
      v.pod_spec.reset(pod);
      v.container.reset(c);
      if (Get(c, "env").IsSequence()) {
        for (const YAML::Node& e : Get(c, "env")) v.env[Str(e, "name")] = e;
      }
      v.words = Words(c);
      v.invocations = FindInvocations(v.words, v.where);
      r.containers.push_back(std::move(v));
    }
  }
  return r;
}

// "$(NAME)" references in a word.
inline std::vector<std::string> VarRefs(const std::string& word) {
  static const std::regex kRef(R"(\$\(([A-Za-z_][A-Za-z0-9_]*)\))");
  std::vector<std::string> names;
  for (std::sregex_iterator it(word.begin(), word.end(), kRef), end; it != end; ++it) {
    names.push_back((*it)[1].str());
  }
  return names;
}

// `value` with $(VAR) replaced by the container's literal env values.
inline std::string Expand(const ContainerView& c, const std::string& value) {
  std::string out = value;
  for (const std::string& name : VarRefs(value)) {
    auto it = c.env.find(name);
    if (it == c.env.end() || !Has(it->second, "value")) continue;
    out = absl::StrReplaceAll(out, {{"$(" + name + ")", Str(it->second, "value")}});
  }
  return out;
}

inline std::optional<int64_t> ContainerPort(const YAML::Node& container, const std::string& name) {
  const YAML::Node ports = Get(container, "ports");
  if (!ports.IsSequence()) return std::nullopt;
  for (const YAML::Node& p : ports) {
    if (Str(p, "name") == name) return Int(Get(p, "containerPort"));
  }
  return std::nullopt;
}

// ---- the binaries' --help, read once -------------------------------------

struct Helps {
  absl::StatusOr<HelpFlags> worker = absl::UnknownError("not read");
  absl::StatusOr<HelpFlags> router = absl::UnknownError("not read");
  absl::StatusOr<HelpFlags> launch = absl::UnknownError("not read");

  const absl::StatusOr<HelpFlags>& For(Program p) const {
    switch (p) {
      case Program::kWorker:
        return worker;
      case Program::kRouter:
        return router;
      case Program::kLaunchReplica:
        return launch;
    }
    return worker;
  }
};

inline const Helps& GetHelps() {
  static const Helps* helps = [] {
    auto* h = new Helps;
    h->worker = ReadHelp(WorkerBinary());
    h->router = ReadHelp(RouterBinary());
    h->launch = ReadHelp(LaunchScript());
    return h;
  }();
  return *helps;
}

#define ASSERT_HELPS()                                                 \
  do {                                                                 \
    ASSERT_TRUE(GetHelps().worker.ok()) << GetHelps().worker.status(); \
    ASSERT_TRUE(GetHelps().router.ok()) << GetHelps().router.status(); \
    ASSERT_TRUE(GetHelps().launch.ok()) << GetHelps().launch.status(); \
  } while (0)

// A flag's value in an invocation, or the --help default.
inline std::optional<std::string> FlagOrDefault(const Invocation& inv, const std::string& flag) {
  const HelpFlags& help = *GetHelps().For(inv.program);
  std::optional<std::string> v = LastValue(FlagUses(inv, help), flag);
  if (v) return v;
  return help.Default(flag);
}

inline const Invocation* FindInvocation(const ContainerView& c, Program p) {
  for (const Invocation& inv : c.invocations) {
    if (inv.program == p) return &inv;
  }
  return nullptr;
}

// ---- file-level tests ----------------------------------------------------

inline std::vector<std::string> YamlFiles() {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(K8sDir())) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
      files.push_back(fs::weakly_canonical(e.path()).string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline const std::vector<std::string>& RenderDirs() {
  static const std::vector<std::string> kDirs = {"base", "overlays/cpu", "overlays/gpu"};
  return kDirs;
}

}  // namespace tessera::testing::deploy
