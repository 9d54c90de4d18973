// CI checks of the deployment files, with no cluster and no network:
//   - every YAML under deploy/k8s parses, is used by a kustomization, and is a
//     Kubernetes object, a Kustomization or a JSON 6902 patch;
//   - the base and each overlay render (tests/deploy/k8s_render.h): the
//     files they list exist and their patches hit existing resources;
//   - in each render: kinds and apiVersions, names, selectors matching pod
//     labels, containers with images and named ports, gRPC probes, Services
//     whose targetPorts exist on their pods, referenced volumes, claims and
//     Secrets, the admin port only on a ClusterIP Service;
//   - every flag the manifests, deploy/launch-replica.sh, deploy/README.md
//     and the hostfile example pass exists in the real binaries' --help
//     (tessera-router, tessera-worker, launch-replica.sh), and every port
//     and probe port equals the flag values (or the --help defaults);
//   - termination grace >= --shutdown-timeout, GPUs = ranks, the router's
//     dns:/// target is the workers' headless Service and port.
// The binaries must have been built: a missing one fails the test.
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

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;

std::string SourceDir() { return TESSERA_SOURCE_DIR; }
std::string K8sDir() { return SourceDir() + "/deploy/k8s"; }
std::string LaunchScript() { return SourceDir() + "/deploy/launch-replica.sh"; }

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
std::string WorkerBinary() {
  return EnvOr("TESSERA_WORKER_BINARY", std::string(TESSERA_BINARY_DIR) + "/worker/tessera-worker");
}
std::string RouterBinary() {
  return EnvOr("TESSERA_ROUTER_BINARY", std::string(TESSERA_BINARY_DIR) + "/router/tessera-router");
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ---- small YAML accessors ------------------------------------------------

std::string Str(const YAML::Node& n, const std::string& key) {
  const YAML::Node& c = n;
  if (!c.IsMap() || !c[key] || !c[key].IsScalar()) return "";
  return c[key].as<std::string>();
}
bool Has(const YAML::Node& n, const std::string& key) {
  const YAML::Node& c = n;
  return c.IsMap() && c[key].IsDefined() && !c[key].IsNull();
}
// An undefined node: what Get/Path return for a missing key (IsDefined() false).
YAML::Node Missing() { return YAML::Node(YAML::NodeType::Undefined); }
YAML::Node Get(const YAML::Node& n, const std::string& key) {
  const YAML::Node& c = n;
  return c.IsMap() && c[key] ? YAML::Node(c[key]) : Missing();
}
YAML::Node Path(const YAML::Node& n, const std::vector<std::string>& keys) {
  YAML::Node cur = n;
  for (const std::string& k : keys) {
    if (!Has(cur, k)) return Missing();
    cur.reset(Get(cur, k));
  }
  return cur;
}
std::optional<int64_t> Int(const YAML::Node& n) {
  int64_t v = 0;
  if (!n.IsDefined() || !n.IsScalar() || !absl::SimpleAtoi(n.as<std::string>(), &v)) {
    return std::nullopt;
  }
  return v;
}
std::map<std::string, std::string> StringMap(const YAML::Node& n) {
  std::map<std::string, std::string> out;
  if (!n.IsMap()) return out;
  for (auto it = n.begin(); it != n.end(); ++it) {
    out[it->first.as<std::string>()] = it->second.IsScalar() ? it->second.as<std::string>() : "";
  }
  return out;
}
bool Subset(const std::map<std::string, std::string>& a,
            const std::map<std::string, std::string>& b) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) return false;
  }
  return true;
}
std::string Name(const YAML::Node& object) { return Str(Get(object, "metadata"), "name"); }

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

std::vector<std::string> Words(const YAML::Node& container) {
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

Render MakeRender(const std::string& dir, RenderedKustomization k) {
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
std::vector<std::string> VarRefs(const std::string& word) {
  static const std::regex kRef(R"(\$\(([A-Za-z_][A-Za-z0-9_]*)\))");
  std::vector<std::string> names;
  for (std::sregex_iterator it(word.begin(), word.end(), kRef), end; it != end; ++it) {
    names.push_back((*it)[1].str());
  }
  return names;
}

// `value` with $(VAR) replaced by the container's literal env values.
std::string Expand(const ContainerView& c, const std::string& value) {
  std::string out = value;
  for (const std::string& name : VarRefs(value)) {
    auto it = c.env.find(name);
    if (it == c.env.end() || !Has(it->second, "value")) continue;
    out = absl::StrReplaceAll(out, {{"$(" + name + ")", Str(it->second, "value")}});
  }
  return out;
}

std::optional<int64_t> ContainerPort(const YAML::Node& container, const std::string& name) {
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

const Helps& GetHelps() {
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
std::optional<std::string> FlagOrDefault(const Invocation& inv, const std::string& flag) {
  const HelpFlags& help = *GetHelps().For(inv.program);
  std::optional<std::string> v = LastValue(FlagUses(inv, help), flag);
  if (v) return v;
  return help.Default(flag);
}

const Invocation* FindInvocation(const ContainerView& c, Program p) {
  for (const Invocation& inv : c.invocations) {
    if (inv.program == p) return &inv;
  }
  return nullptr;
}

// ---- file-level tests ----------------------------------------------------

std::vector<std::string> YamlFiles() {
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

const std::vector<std::string>& RenderDirs() {
  static const std::vector<std::string> kDirs = {"base", "overlays/cpu", "overlays/gpu"};
  return kDirs;
}

TEST(K8sFiles, EveryYamlParsesAndHasAKnownShape) {
  const std::vector<std::string> files = YamlFiles();
  ASSERT_GE(files.size(), 8u) << "deploy/k8s holds too few YAML files";
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    absl::StatusOr<std::vector<YAML::Node>> docs = LoadYamlDocuments(file);
    ASSERT_TRUE(docs.ok()) << docs.status();
    ASSERT_FALSE(docs->empty()) << "no YAML document";
    for (const YAML::Node& doc : *docs) {
      if (doc.IsSequence()) {  // a JSON 6902 patch
        for (const YAML::Node& op : doc) {
          EXPECT_TRUE(Has(op, "op") && Has(op, "path")) << "a JSON patch op needs op and path";
        }
        continue;
      }
      ASSERT_TRUE(doc.IsMap()) << "a document is an object or a JSON patch";
      EXPECT_FALSE(Str(doc, "apiVersion").empty()) << "no apiVersion";
      EXPECT_FALSE(Str(doc, "kind").empty()) << "no kind";
      if (Str(doc, "kind") == "Kustomization") {
        EXPECT_EQ(fs::path(file).filename(), "kustomization.yaml");
      } else {
        EXPECT_FALSE(Name(doc).empty()) << "no metadata.name";
      }
    }
  }
}

TEST(K8sFiles, EveryYamlIsUsedByAKustomization) {
  std::set<std::string> used;
  for (const std::string& dir : RenderDirs()) {
    absl::StatusOr<RenderedKustomization> r = RenderKustomization(K8sDir() + "/" + dir);
    ASSERT_TRUE(r.ok()) << r.status();
    used.insert(r->files.begin(), r->files.end());
  }
  for (const std::string& file : YamlFiles()) {
    EXPECT_TRUE(used.contains(file)) << file << " is in no kustomization (resources or patches)";
  }
}

TEST(K8sFiles, RendererRefusesBrokenKustomizations) {
  // The renderer must be able to fail: a patch on a missing resource, a
  // missing resource file.
  const std::string dir = fs::temp_directory_path() / ("tessera_k8s_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir + "/svc.yaml") << "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n";
  std::ofstream(dir + "/patch.yaml") << "apiVersion: v1\nkind: Service\nmetadata:\n  name: b\n";
  std::ofstream(dir + "/kustomization.yaml")
      << "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
         "resources: [svc.yaml]\npatches:\n  - path: patch.yaml\n";
  EXPECT_FALSE(RenderKustomization(dir).ok());
  std::ofstream(dir + "/kustomization.yaml")
      << "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
         "resources: [svc.yaml, missing.yaml]\n";
  EXPECT_FALSE(RenderKustomization(dir).ok());
  std::ofstream(dir + "/kustomization.yaml")
      << "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
         "resources: [svc.yaml]\nnamePrefix: x-\n";
  EXPECT_FALSE(RenderKustomization(dir).ok()) << "unsupported fields must be refused";
  fs::remove_all(dir);
}

// ---- per-render tests ----------------------------------------------------

class K8sRender : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<RenderedKustomization> k = RenderKustomization(K8sDir() + "/" + GetParam());
    ASSERT_TRUE(k.ok()) << k.status();
    r_ = MakeRender(GetParam(), *std::move(k));
  }
  Render r_;
};

TEST_P(K8sRender, KindsApiVersionsAndNames) {
  static const std::map<std::string, std::string> kApi = {
      {"Deployment", "apps/v1"}, {"StatefulSet", "apps/v1"},
      {"Service", "v1"},         {"Secret", "v1"},
      {"ConfigMap", "v1"},       {"PersistentVolumeClaim", "v1"},
      {"ServiceAccount", "v1"},  {"PodDisruptionBudget", "policy/v1"}};
  static const std::regex kDns1123(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)");
  ASSERT_FALSE(r_.k.objects.empty());
  for (const YAML::Node& o : r_.k.objects) {
    SCOPED_TRACE(ObjectKey(o));
    auto it = kApi.find(Str(o, "kind"));
    ASSERT_NE(it, kApi.end()) << "unexpected kind (extend the table when adding one)";
    EXPECT_EQ(Str(o, "apiVersion"), it->second);
    const std::string name = Name(o);
    EXPECT_TRUE(std::regex_match(name, kDns1123) && name.size() <= 63) << "bad name " << name;
  }
  EXPECT_EQ(r_.OfKind("Deployment").size(), 1u) << "one router Deployment";
  EXPECT_EQ(r_.OfKind("StatefulSet").size(), 1u) << "one worker StatefulSet";
}

TEST_P(K8sRender, WorkloadsSelectTheirPodsAndContainersAreComplete) {
  static const std::regex kPortName(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)");
  for (const YAML::Node& w : r_.Workloads()) {
    SCOPED_TRACE(ObjectKey(w));
    const auto match = StringMap(Path(w, {"spec", "selector", "matchLabels"}));
    const auto labels = StringMap(Path(w, {"spec", "template", "metadata", "labels"}));
    EXPECT_FALSE(match.empty()) << "spec.selector.matchLabels is empty";
    EXPECT_TRUE(Subset(match, labels)) << "the selector does not match the template's labels";
    const YAML::Node pod = Path(w, {"spec", "template", "spec"});
    ASSERT_TRUE(Get(pod, "containers").IsSequence()) << "no containers";
    ASSERT_GT(Get(pod, "containers").size(), 0u);
    std::set<std::string> volumes;
    if (Get(pod, "volumes").IsSequence()) {
      for (const YAML::Node& v : Get(pod, "volumes")) {
        EXPECT_TRUE(volumes.insert(Str(v, "name")).second)
            << "volume " << Str(v, "name") << " twice";
        if (Has(v, "persistentVolumeClaim")) {
          const std::string claim = Str(Get(v, "persistentVolumeClaim"), "claimName");
          EXPECT_TRUE(r_.Find("PersistentVolumeClaim", claim).has_value())
              << "volume " << Str(v, "name") << " uses PersistentVolumeClaim " << claim
              << ", which is not in the render";
        }
      }
    }
    for (const YAML::Node& c : Get(pod, "containers")) {
      SCOPED_TRACE("container " + Str(c, "name"));
      EXPECT_FALSE(Str(c, "name").empty());
      EXPECT_FALSE(Str(c, "image").empty()) << "no image";
      ASSERT_TRUE(Get(c, "ports").IsSequence()) << "no ports";
      for (const YAML::Node& p : Get(c, "ports")) {
        const std::string name = Str(p, "name");
        EXPECT_TRUE(std::regex_match(name, kPortName) && name.size() <= 15)
            << "ports need a name (IANA_SVC_NAME, <= 15 chars): \"" << name << "\"";
        const auto port = Int(Get(p, "containerPort"));
        EXPECT_TRUE(port && *port > 0 && *port < 65536) << "bad containerPort of " << name;
      }
      for (const char* probe : {"readinessProbe", "livenessProbe"}) {
        ASSERT_TRUE(Has(c, probe)) << "no " << probe;
        const YAML::Node grpc = Path(c, {probe, "grpc"});
        ASSERT_TRUE(grpc.IsMap()) << probe << " must be a Kubernetes grpc: probe (grpc.health.v1)";
        const auto port = Int(Get(grpc, "port"));
        ASSERT_TRUE(port.has_value()) << probe << ".grpc.port must be a number";
        bool on_a_port = false;
        for (const YAML::Node& p : Get(c, "ports"))
          on_a_port |= Int(Get(p, "containerPort")) == port;
        EXPECT_TRUE(on_a_port) << probe << " probes port " << *port << ", which the container "
                               << "does not declare";
      }
      if (Get(c, "volumeMounts").IsSequence()) {
        for (const YAML::Node& m : Get(c, "volumeMounts")) {
          EXPECT_TRUE(volumes.contains(Str(m, "name")))
              << "volumeMount " << Str(m, "mountPath") << " uses undefined volume "
              << Str(m, "name");
        }
      }
      if (Get(c, "env").IsSequence()) {
        for (const YAML::Node& e : Get(c, "env")) {
          const YAML::Node secret = Path(e, {"valueFrom", "secretKeyRef"});
          if (!secret.IsMap()) continue;
          const std::string name = Str(secret, "name");
          const bool optional = Str(secret, "optional") == "true";
          const bool in_render = r_.Find("Secret", name).has_value();
          const bool documented = absl::StrContains(ReadText(SourceDir() + "/deploy/README.md"),
                                                    "create secret generic " + name);
          EXPECT_TRUE(optional || in_render || documented)
              << "env " << Str(e, "name") << " needs Secret " << name
              << ": not optional, not in the render, and deploy/README.md does not create it";
          EXPECT_FALSE(Str(secret, "key").empty());
        }
      }
    }
  }
}

TEST_P(K8sRender, ServicesTargetPortsTheirPodsHave) {
  ASSERT_FALSE(r_.OfKind("Service").empty());
  for (const YAML::Node& s : r_.OfKind("Service")) {
    SCOPED_TRACE(ObjectKey(s));
    const auto selector = StringMap(Path(s, {"spec", "selector"}));
    ASSERT_FALSE(selector.empty()) << "no selector";
    std::vector<YAML::Node> pods;
    for (const YAML::Node& w : r_.Workloads()) {
      if (Subset(selector, StringMap(Path(w, {"spec", "template", "metadata", "labels"})))) {
        pods.push_back(Path(w, {"spec", "template", "spec"}));
      }
    }
    ASSERT_FALSE(pods.empty()) << "the selector matches no workload's pods";
    const YAML::Node ports = Path(s, {"spec", "ports"});
    ASSERT_TRUE(ports.IsSequence() && ports.size() > 0) << "no ports";
    for (const YAML::Node& p : ports) {
      EXPECT_FALSE(Str(p, "name").empty()) << "service ports are named";
      ASSERT_TRUE(Int(Get(p, "port")).has_value()) << "no port";
      const std::string target = Has(p, "targetPort") ? Str(p, "targetPort") : Str(p, "port");
      for (const YAML::Node& pod : pods) {
        bool found = false;
        for (const YAML::Node& c : Get(pod, "containers")) {
          if (!Get(c, "ports").IsSequence()) continue;
          for (const YAML::Node& cp : Get(c, "ports")) {
            found |= Str(cp, "name") == target || Str(cp, "containerPort") == target;
          }
        }
        EXPECT_TRUE(found) << "targetPort " << target << " is not a port of the selected pods";
      }
    }
  }
  for (const YAML::Node& pdb : r_.OfKind("PodDisruptionBudget")) {
    const auto match = StringMap(Path(pdb, {"spec", "selector", "matchLabels"}));
    bool selects = false;
    for (const YAML::Node& w : r_.Workloads()) {
      selects |= !match.empty() &&
                 Subset(match, StringMap(Path(w, {"spec", "template", "metadata", "labels"})));
    }
    EXPECT_TRUE(selects) << ObjectKey(pdb) << " selects no workload";
  }
}

// Every --flag in the containers' command lines exists in the program's
// --help; values are given where needed; $(VAR) references are defined.
TEST_P(K8sRender, ContainerFlagsExistInTheBinaries) {
  ASSERT_HELPS();
  ASSERT_NE(r_.Running(Program::kWorker), nullptr) << "no container runs tessera-worker";
  ASSERT_NE(r_.Running(Program::kRouter), nullptr) << "no container runs tessera-router";
  for (const ContainerView& c : r_.containers) {
    SCOPED_TRACE(c.where);
    EXPECT_FALSE(c.invocations.empty()) << "runs no Tessera program";
    for (const std::string& w : c.words) {
      for (const std::string& var : VarRefs(w)) {
        EXPECT_TRUE(c.env.contains(var))
            << "$(" << var << ") in \"" << w << "\" is not an env var of the container";
      }
    }
    for (const Invocation& inv : c.invocations) {
      const HelpFlags& help = *GetHelps().For(inv.program);
      for (const FlagUse& use : FlagUses(inv, help)) {
        EXPECT_TRUE(help.Knows(use.name))
            << use.spelled << " is not a flag of " << ProgramName(inv.program) << " (its --help)";
        auto it = help.flags.find(use.name);
        if (it != help.flags.end() && it->second.takes_value) {
          EXPECT_TRUE(use.value.has_value()) << use.spelled << " needs a value";
        }
      }
    }
    // TESSERA_* variables the container sets for its program (not only for
    // $(VAR) expansion) must be ones the program documents.
    std::set<std::string> expanded;
    for (const std::string& w : c.words) {
      for (const std::string& var : VarRefs(w)) expanded.insert(var);
    }
    for (const auto& [name, e] : c.env) {
      if (!absl::StartsWith(name, "TESSERA_") || expanded.contains(name)) continue;
      bool documented = false;
      for (const Invocation& inv : c.invocations) {
        documented |= absl::StrContains(GetHelps().For(inv.program)->text, name);
      }
      EXPECT_TRUE(documented) << "env " << name << " is read by no program of the container "
                              << "(no --help mentions it)";
    }
  }
}

TEST_P(K8sRender, WorkerPortsProbesDrainAndGpus) {
  ASSERT_HELPS();
  const ContainerView* c = r_.Running(Program::kWorker);
  ASSERT_NE(c, nullptr);
  SCOPED_TRACE(c->where);
  const Invocation* worker = FindInvocation(*c, Program::kWorker);
  const std::optional<std::string> port_text = FlagOrDefault(*worker, "port");
  int64_t port = 0;
  ASSERT_TRUE(port_text && absl::SimpleAtoi(*port_text, &port)) << "worker --port";
  EXPECT_EQ(ContainerPort(c->container, "grpc"), port)
      << "the container port named grpc must be the worker's --port " << port;
  for (const char* probe : {"readinessProbe", "livenessProbe", "startupProbe"}) {
    if (!Has(c->container, probe)) continue;
    EXPECT_EQ(Int(Path(c->container, {probe, "grpc", "port"})), port)
        << probe << " must be a grpc probe on the worker's --port";
  }
  const std::string host = FlagOrDefault(*worker, "host").value_or("");
  EXPECT_TRUE(host == "0.0.0.0" || host == "::" || host == "[::]")
      << "the worker must listen on all pod addresses (--host), got " << host;

  // Drain: preStop signals mpirun (PID 1 after launch-replica.sh's exec),
  // and the grace period covers --shutdown-timeout.
  double shutdown = 0;
  ASSERT_TRUE(absl::SimpleAtod(FlagOrDefault(*worker, "shutdown_timeout").value_or(""), &shutdown));
  const int64_t grace = Int(Get(c->pod_spec, "terminationGracePeriodSeconds")).value_or(30);
  EXPECT_GE(static_cast<double>(grace), shutdown + 5)
      << "terminationGracePeriodSeconds must cover the worker's --shutdown-timeout (+5 s to exit)";
  const YAML::Node live = Get(c->container, "livenessProbe");
  const int64_t live_window =
      Int(Get(live, "failureThreshold")).value_or(3) * Int(Get(live, "periodSeconds")).value_or(10);
  EXPECT_GT(static_cast<double>(live_window), shutdown)
      << "a draining worker is NOT_SERVING: liveness must tolerate a whole drain";
  ASSERT_FALSE(c->words.empty());
  EXPECT_EQ(fs::path(c->words[0]).filename(), "launch-replica.sh")
      << "the worker container's command is launch-replica.sh (mpirun becomes PID 1)";
  const YAML::Node pre_stop = Path(c->container, {"lifecycle", "preStop", "exec", "command"});
  ASSERT_TRUE(pre_stop.IsSequence()) << "no preStop exec hook";
  std::string hook;
  for (const YAML::Node& w : pre_stop) absl::StrAppend(&hook, w.as<std::string>(), " ");
  EXPECT_TRUE(absl::StrContains(hook, "kill -USR1 1"))
      << "preStop must drain: SIGUSR1 to mpirun (PID 1), which forwards it to rank 0: " << hook;

  // Ranks and GPUs.
  const Invocation* launch = FindInvocation(*c, Program::kLaunchReplica);
  ASSERT_NE(launch, nullptr);
  const std::optional<std::string> np_text = LastValue(FlagUses(*launch, *GetHelps().launch), "np");
  ASSERT_TRUE(np_text.has_value()) << "launch-replica.sh needs --np in a pod";
  int64_t np = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Expand(*c, *np_text), &np) && np >= 1)
      << "--np " << *np_text << " does not expand to a positive number";
  for (const char* side : {"limits", "requests"}) {
    const YAML::Node gpus = Path(c->container, {"resources", side, "nvidia.com/gpu"});
    if (gpus.IsDefined()) {
      EXPECT_EQ(Int(gpus), np) << "resources." << side << " nvidia.com/gpu must be --np " << np;
    }
  }
}

TEST_P(K8sRender, RouterPortsAdminAndDiscovery) {
  ASSERT_HELPS();
  const ContainerView* c = r_.Running(Program::kRouter);
  ASSERT_NE(c, nullptr);
  SCOPED_TRACE(c->where);
  const Invocation* router = FindInvocation(*c, Program::kRouter);
  int64_t client_port = 0, admin_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(FlagOrDefault(*router, "port").value_or(""), &client_port));
  ASSERT_TRUE(absl::SimpleAtoi(FlagOrDefault(*router, "admin_port").value_or(""), &admin_port));
  EXPECT_EQ(ContainerPort(c->container, "grpc"), client_port)
      << "the port named grpc must be the router's --port";
  EXPECT_EQ(ContainerPort(c->container, "admin"), admin_port)
      << "the port named admin must be the router's --admin-port";
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    EXPECT_EQ(Int(Path(c->container, {probe, "grpc", "port"})), client_port)
        << probe << " must be a grpc probe on the router's --port";
  }
  double shutdown = 0;
  ASSERT_TRUE(absl::SimpleAtod(FlagOrDefault(*router, "shutdown_timeout").value_or(""), &shutdown));
  EXPECT_GE(
      static_cast<double>(Int(Get(c->pod_spec, "terminationGracePeriodSeconds")).value_or(30)),
      shutdown + 5)
      << "terminationGracePeriodSeconds must cover the router's --shutdown-timeout";

  // Admin on all pod addresses needs the token, from a Secret, not in args.
  const std::string admin_host = FlagOrDefault(*router, "admin_host").value_or("");
  EXPECT_FALSE(LastValue(FlagUses(*router, *GetHelps().router), "admin_token").has_value())
      << "--admin-token in args is visible in the pod spec; use TESSERA_ADMIN_TOKEN from a Secret";
  if (admin_host != "127.0.0.1" && admin_host != "localhost" && admin_host != "::1") {
    ASSERT_TRUE(c->env.contains("TESSERA_ADMIN_TOKEN"))
        << "--admin-host " << admin_host << " needs the admin token (TESSERA_ADMIN_TOKEN)";
    EXPECT_TRUE(Path(c->env.at("TESSERA_ADMIN_TOKEN"), {"valueFrom", "secretKeyRef"}).IsMap())
        << "TESSERA_ADMIN_TOKEN comes from a Secret";
    EXPECT_TRUE(absl::StrContains(GetHelps().router->text, "TESSERA_ADMIN_TOKEN"))
        << "tessera-router --help does not mention TESSERA_ADMIN_TOKEN";
  }

  // Services: the admin port only on ClusterIP Services that carry nothing
  // else; the client port on some Service.
  bool client_served = false, admin_served = false;
  for (const YAML::Node& s : r_.OfKind("Service")) {
    const auto selector = StringMap(Path(s, {"spec", "selector"}));
    if (!Subset(selector,
                StringMap(Path(c->workload, {"spec", "template", "metadata", "labels"})))) {
      continue;
    }
    bool has_admin = false, has_client = false;
    for (const YAML::Node& p : Path(s, {"spec", "ports"})) {
      const std::string target = Has(p, "targetPort") ? Str(p, "targetPort") : Str(p, "port");
      has_admin |= target == "admin" || target == std::to_string(admin_port);
      has_client |= target == "grpc" || target == std::to_string(client_port);
    }
    client_served |= has_client;
    admin_served |= has_admin;
    const std::string type = Str(Get(s, "spec"), "type");
    if (has_admin) {
      EXPECT_TRUE(type.empty() || type == "ClusterIP")
          << ObjectKey(s) << " exposes the admin port with type " << type;
      EXPECT_FALSE(has_client) << ObjectKey(s) << " mixes the admin and client ports";
    }
  }
  EXPECT_TRUE(client_served) << "no Service for the router's client port";
  EXPECT_TRUE(admin_served) << "no Service for the router's admin port";

  // --workers dns:///<headless service>[.$(POD_NAMESPACE).svc.cluster.local]:<worker port>
  const std::string workers =
      LastValue(FlagUses(*router, *GetHelps().router), "workers").value_or("");
  static const std::regex kDns(R"(^dns:///([^:/]+):([0-9]+)$)");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(workers, m, kDns))
      << "--workers must be dns:///NAME:PORT: " << workers;
  const std::vector<std::string> labels = absl::StrSplit(m[1].str(), '.');
  const std::vector<YAML::Node> sets = r_.OfKind("StatefulSet");
  ASSERT_EQ(sets.size(), 1u);
  const std::string headless = Str(Get(sets[0], "spec"), "serviceName");
  EXPECT_EQ(labels[0], headless) << "--workers must name the StatefulSet's serviceName";
  if (labels.size() > 1) {
    EXPECT_EQ(absl::StrJoin(labels.begin() + 1, labels.end(), "."),
              "$(POD_NAMESPACE).svc.cluster.local");
    ASSERT_TRUE(c->env.contains("POD_NAMESPACE"));
    EXPECT_EQ(Str(Path(c->env.at("POD_NAMESPACE"), {"valueFrom", "fieldRef"}), "fieldPath"),
              "metadata.namespace");
  }
  const std::optional<YAML::Node> service = r_.Find("Service", headless);
  ASSERT_TRUE(service.has_value()) << "no Service " << headless;
  EXPECT_EQ(Str(Get(*service, "spec"), "clusterIP"), "None") << headless << " must be headless";
  const ContainerView* wc = r_.Running(Program::kWorker);
  ASSERT_NE(wc, nullptr);
  const std::string worker_port =
      FlagOrDefault(*FindInvocation(*wc, Program::kWorker), "port").value_or("");
  EXPECT_EQ(m[2].str(), worker_port) << "--workers must use the workers' --port";
  bool service_port = false;
  for (const YAML::Node& p : Path(*service, {"spec", "ports"}))
    service_port |= Str(p, "port") == worker_port;
  EXPECT_TRUE(service_port) << headless << " has no port " << worker_port;
}

// The worker container's launch-replica.sh arguments are accepted by the
// script itself (--dry-run with the built worker), $(VAR)s expanded as the
// kubelet would.
TEST_P(K8sRender, LaunchReplicaAcceptsTheContainerArgs) {
  ASSERT_HELPS();
  const ContainerView* c = r_.Running(Program::kLaunchReplica);
  ASSERT_NE(c, nullptr);
  std::string command = "env -u TESSERA_WORKER_BINARY '" + LaunchScript() +
                        "' --dry-run --worker '" + WorkerBinary() + "'";
  bool after_command = false;
  for (const std::string& w : c->words) {
    if (!after_command) {
      after_command = fs::path(w).filename() == "launch-replica.sh";
      continue;
    }
    command += " '" + Expand(*c, w) + "'";
  }
  const CommandResult r = RunCommand(command + " 2>&1", 30);
  EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.out;
  const std::string np = Expand(
      *c,
      LastValue(FlagUses(*FindInvocation(*c, Program::kLaunchReplica), *GetHelps().launch), "np")
          .value_or("?"));
  EXPECT_TRUE(absl::StrContains(r.out, "-np " + np + " ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "--mca plm isolated")) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Deploy, K8sRender, ::testing::ValuesIn(RenderDirs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '/', '_');
                           return name;
                         });

TEST(K8sOverlays, CpuRunsTheDummyModelWithoutGpus) {
  ASSERT_HELPS();
  absl::StatusOr<RenderedKustomization> k = RenderKustomization(K8sDir() + "/overlays/cpu");
  ASSERT_TRUE(k.ok()) << k.status();
  const Render r = MakeRender("overlays/cpu", *std::move(k));
  const ContainerView* c = r.Running(Program::kWorker);
  ASSERT_NE(c, nullptr);
  const std::vector<FlagUse> uses =
      FlagUses(*FindInvocation(*c, Program::kWorker), *GetHelps().worker);
  EXPECT_TRUE(LastValue(uses, "dummy").has_value()) << "the CPU overlay serves a --dummy model";
  EXPECT_FALSE(LastValue(uses, "model").has_value());
  for (const ContainerView& v : r.containers) {
    for (const char* side : {"limits", "requests"}) {
      EXPECT_FALSE(Path(v.container, {"resources", side, "nvidia.com/gpu"}).IsDefined()) << v.where;
    }
    EXPECT_TRUE(Path(v.container, {"resources", "limits", "memory"}).IsDefined())
        << v.where << ": a laptop cluster needs memory limits";
  }
  EXPECT_TRUE(r.Find("Secret", "tessera-admin").has_value()) << "the CPU overlay brings a token";
}

TEST(K8sOverlays, GpuGivesEachRankAGpuAndAModel) {
  ASSERT_HELPS();
  absl::StatusOr<RenderedKustomization> k = RenderKustomization(K8sDir() + "/overlays/gpu");
  ASSERT_TRUE(k.ok()) << k.status();
  const Render r = MakeRender("overlays/gpu", *std::move(k));
  const ContainerView* c = r.Running(Program::kWorker);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(Path(c->container, {"resources", "limits", "nvidia.com/gpu"}).IsDefined())
      << "the GPU overlay requests nvidia.com/gpu";
  const std::vector<FlagUse> uses =
      FlagUses(*FindInvocation(*c, Program::kWorker), *GetHelps().worker);
  EXPECT_TRUE(LastValue(uses, "model").has_value()) << "the GPU overlay serves a --model";
  EXPECT_FALSE(LastValue(uses, "dummy").has_value());
  // The client Service may leave the cluster; the admin one may not.
  const std::optional<YAML::Node> admin = r.Find("Service", "tessera-router-admin");
  ASSERT_TRUE(admin.has_value());
  EXPECT_TRUE(Str(Get(*admin, "spec"), "type").empty() ||
              Str(Get(*admin, "spec"), "type") == "ClusterIP");
}

// ---- flags in scripts and docs -------------------------------------------

TEST(DeployDocs, EveryFlagInScriptsAndDocsExists) {
  ASSERT_HELPS();
  struct Doc {
    std::string path;
    bool markdown;
  };
  const std::vector<Doc> docs = {{SourceDir() + "/deploy/README.md", true},
                                 {SourceDir() + "/README.md", true},
                                 {LaunchScript(), false},
                                 {SourceDir() + "/deploy/hostfile.example", false}};
  int checked = 0;
  for (const Doc& doc : docs) {
    ASSERT_TRUE(fs::exists(doc.path)) << doc.path;
    for (const auto& [line, text] : CommandLines(ReadText(doc.path), doc.markdown)) {
      const std::string where = absl::StrCat(doc.path, ":", line);
      for (const Invocation& inv : FindInvocations(ShellSplit(text), where)) {
        const HelpFlags& help = *GetHelps().For(inv.program);
        for (const FlagUse& use : FlagUses(inv, help)) {
          ++checked;
          EXPECT_TRUE(help.Knows(use.name)) << where << ": " << use.spelled << " is not a flag of "
                                            << ProgramName(inv.program) << "\n  " << text;
        }
      }
    }
  }
  EXPECT_GT(checked, 20) << "found too few flags in the docs: is the command-line scan broken?";
}

TEST(DeployDocs, HelpParsersSeeTheFlags) {
  ASSERT_HELPS();
  for (const char* flag :
       {"port", "shutdown_timeout", "model", "dummy", "host", "kv_cache_memory"}) {
    EXPECT_TRUE(GetHelps().worker->Knows(flag)) << flag;
  }
  for (const char* flag : {"port", "admin_port", "admin_host", "workers", "dns_refresh_seconds"}) {
    EXPECT_TRUE(GetHelps().router->Knows(flag)) << flag;
  }
  for (const char* flag : {"np", "hostfile", "mpirun_args", "dry_run", "worker"}) {
    EXPECT_TRUE(GetHelps().launch->Knows(flag)) << flag;
  }
  EXPECT_FALSE(GetHelps().worker->Knows("no_such_flag"));
  EXPECT_EQ(GetHelps().worker->Default("port"), "50051");
  EXPECT_TRUE(GetHelps().launch->flags.at("np").takes_value);
  EXPECT_FALSE(GetHelps().launch->flags.at("dry_run").takes_value);
}

// ---- launch-replica.sh on its own ------------------------------------------

struct ScriptRun {
  int exit_code;
  std::string out;  // stdout and stderr
};
ScriptRun RunScript(const std::string& args, const std::string& env = "") {
  const CommandResult r = RunCommand("env -u TESSERA_WORKER_BINARY -u CUDA_VISIBLE_DEVICES " + env +
                                         " bash '" + LaunchScript() + "' " + args + " 2>&1",
                                     30);
  return {r.exit_code, r.out};
}

TEST(LaunchReplicaScript, DryRunPrintsTheMpirunCommand) {
  const std::string dir = fs::temp_directory_path() / ("tessera_hosts_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir + "/hosts") << "# two nodes\nnode-a slots=2\nnode-b slots=2  # more\n\n";
  const std::string worker = " --worker '" + WorkerBinary() + "' ";

  // The ranks default to the hostfile's slots; worker flags pass through
  // verbatim, quoting kept.
  ScriptRun r = RunScript("--dry-run --hostfile " + dir + "/hosts" + worker +
                          "-- --dummy tiny --port 50051 --model '/m/a b'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::HasSubstr(" -np 4 "));
  EXPECT_THAT(r.out, ::testing::HasSubstr(" --hostfile " + dir + "/hosts "));
  EXPECT_THAT(r.out, ::testing::HasSubstr(" --bind-to none "));
  EXPECT_THAT(r.out,
              ::testing::HasSubstr(WorkerBinary() + " --dummy tiny --port 50051 --model /m/a\\ b"));
  EXPECT_EQ(absl::StrContains(r.out, "--allow-run-as-root"), getuid() == 0)
      << "--allow-run-as-root exactly when running as root";

  // CUDA_VISIBLE_DEVICES goes to every rank unchanged; --bind-to from
  // --mpirun-args wins.
  r = RunScript("--dry-run --np 2 --mpirun-args '--bind-to numa --mca btl tcp'" + worker + "--",
                "CUDA_VISIBLE_DEVICES=2,3 NCCL_DEBUG=INFO");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::HasSubstr(" -x CUDA_VISIBLE_DEVICES "));
  EXPECT_THAT(r.out, ::testing::HasSubstr(" -x NCCL_DEBUG "));
  EXPECT_THAT(r.out, ::testing::HasSubstr(" --bind-to numa --mca btl tcp "));
  EXPECT_FALSE(absl::StrContains(r.out, "--bind-to none")) << r.out;

  // Errors: exit 2 with a message naming the problem.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--np 2" + worker, "missing '--'"},
      {"--np 0" + worker + "--", "--np must be a positive integer"},
      {"--np two" + worker + "--", "--np must be a positive integer"},
      {"--np", "--np needs a value"},
      {"--dummy tiny --", "unknown option '--dummy'"},
      {"--hostfile /nonexistent/hosts" + worker + "--", "no such file"},
      {"--hostfile " + dir + "/hosts --np 5" + worker + "--", "more than the 4 slots"},
      {"--np 1 --worker /nonexistent/tessera-worker --", "not found or not executable"},
      {"--np 1 --mpirun /nonexistent/mpirun" + worker + "--", "--mpirun /nonexistent/mpirun"},
  };
  for (const auto& [args, message] : bad) {
    SCOPED_TRACE(args);
    r = RunScript("--dry-run " + args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, ::testing::HasSubstr(message));
  }
  // --oversubscribe allows more ranks than slots.
  r = RunScript("--dry-run --hostfile " + dir + "/hosts --np 5 --mpirun-args --oversubscribe" +
                worker + "--");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  fs::remove_all(dir);
}

// ---- kustomize itself, when this machine has it ---------------------------

// A canonical text of a node: map keys sorted; lists of objects with a merge
// key sorted by it (kustomize and the renderer order merged items
// differently); scalars as strings.
std::string Canonical(const YAML::Node& n) {
  if (n.IsScalar()) return absl::StrCat("\"", n.as<std::string>(), "\"");
  if (n.IsMap()) {
    std::map<std::string, std::string> items;
    for (auto it = n.begin(); it != n.end(); ++it) {
      items[it->first.as<std::string>()] = Canonical(it->second);
    }
    std::string out = "{";
    for (const auto& [k, v] : items) absl::StrAppend(&out, k, ":", v, ",");
    absl::StrAppend(&out, "}");
    return out;
  }
  if (n.IsSequence()) {
    std::vector<std::string> items;
    bool keyed = n.size() > 0;
    for (const YAML::Node& item : n) {
      items.push_back(Canonical(item));
      keyed &= item.IsMap() &&
               (Has(item, "name") || Has(item, "mountPath") || Has(item, "containerPort"));
    }
    if (keyed) std::sort(items.begin(), items.end());
    return absl::StrCat("[", absl::StrJoin(items, ","), "]");
  }
  return "null";
}

TEST(K8sKustomize, RendererAgreesWithKubectlKustomize) {
  if (RunCommand("sh -c 'command -v kubectl' >/dev/null 2>&1", 10).exit_code != 0) {
    GTEST_SKIP() << "kubectl is not installed: the renderer is not compared with kustomize here";
  }
  for (const std::string& dir : RenderDirs()) {
    SCOPED_TRACE(dir);
    const CommandResult out = RunCommand("kubectl kustomize '" + K8sDir() + "/" + dir + "'", 60);
    ASSERT_EQ(out.exit_code, 0) << out.out;
    std::map<std::string, std::string> theirs, ours;
    for (const YAML::Node& doc : YAML::LoadAll(out.out)) theirs[ObjectKey(doc)] = Canonical(doc);
    absl::StatusOr<RenderedKustomization> k = RenderKustomization(K8sDir() + "/" + dir);
    ASSERT_TRUE(k.ok()) << k.status();
    for (const YAML::Node& doc : k->objects) ours[ObjectKey(doc)] = Canonical(doc);
    ASSERT_EQ(theirs.size(), ours.size());
    for (const auto& [key, text] : theirs) {
      ASSERT_TRUE(ours.contains(key)) << key;
      // kustomize writes generated Secrets as base64 `data`; compare the rest.
      if (absl::StartsWith(key, "Secret/")) continue;
      EXPECT_EQ(ours[key], text) << key;
    }
  }
}

}  // namespace
}  // namespace tessera::testing
