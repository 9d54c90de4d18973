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
// The per-render checks are in manifests_render_test.cc; the helpers in
// manifests_test_util.h.
#include "tests/deploy/manifests_test_util.h"

namespace tessera::testing::deploy {
namespace {

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
  // verbatim, quoting kept. Two machines: TCP between them, and every Open
  // MPI TCP channel only on --mpi-interface.
  ScriptRun r = RunScript("--dry-run --hostfile " + dir + "/hosts --mpi-interface eth0" + worker +
                          "-- --dummy tiny --port 50051 --model '/m/a b'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::HasSubstr(" -np 4 "));
  EXPECT_THAT(r.out, ::testing::HasSubstr(" --mca btl self\\,vader\\,tcp --mca btl_tcp_if_include "
                                          "eth0 --mca oob_tcp_if_include eth0 "));
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
  EXPECT_FALSE(absl::StrContains(r.out, "self\\,vader")) << "the user's btl replaces ours";
  EXPECT_THAT(r.out, ::testing::HasSubstr(" --mca oob_tcp_if_include lo "));

  // One machine: shared memory and loopback only, no TCP transport.
  r = RunScript("--dry-run --np 2" + worker + "--");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::HasSubstr(" --mca btl self\\,vader --mca oob_tcp_if_include lo "));
  EXPECT_FALSE(absl::StrContains(r.out, "tcp_if_include eth")) << r.out;

  // Errors: exit 2 with a message naming the problem.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--np 2" + worker, "missing '--'"},
      {"--np 0" + worker + "--", "--np must be a positive integer"},
      {"--np two" + worker + "--", "--np must be a positive integer"},
      {"--np", "--np needs a value"},
      {"--dummy tiny --", "unknown option '--dummy'"},
      {"--hostfile /nonexistent/hosts" + worker + "--", "no such file"},
      {"--hostfile " + dir + "/hosts --np 5 --mpi-interface eth0" + worker + "--",
       "more than the 4 slots"},
      {"--hostfile " + dir + "/hosts" + worker + "--", "give --mpi-interface"},
      {"--np 2 --mpi-interface eth0" + worker + "--", "--mpi-interface is for replicas across"},
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
  r = RunScript("--dry-run --hostfile " + dir + "/hosts --np 5 --mpi-interface eth0 " +
                "--mpirun-args --oversubscribe" + worker + "--");
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
}  // namespace tessera::testing::deploy
