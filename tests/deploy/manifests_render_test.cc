// The deployment checks on each rendered kustomization (the base and every
// overlay): kinds, apiVersions and names; workloads select their pods and
// containers are complete; Services target ports their pods have; container
// flags exist in the binaries; worker and router ports, probes, drain and
// GPUs; launch-replica.sh accepts the container args. See manifests_test.cc
// for the whole list.
#include "tests/deploy/manifests_test_util.h"

namespace tessera::testing::deploy {
namespace {

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
  // ...so it needs the cluster token, from a Secret (not in args, visible in the pod spec).
  ASSERT_TRUE(c->env.contains("TESSERA_CLUSTER_TOKEN")) << "a worker on " << host << ": no token";
  EXPECT_TRUE(Path(c->env.at("TESSERA_CLUSTER_TOKEN"), {"valueFrom", "secretKeyRef"}).IsMap());

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

  // The router sends the workers' cluster token (from a Secret) on every call to them.
  ASSERT_TRUE(c->env.contains("TESSERA_CLUSTER_TOKEN")) << "the router needs the cluster token";
  EXPECT_TRUE(Path(c->env.at("TESSERA_CLUSTER_TOKEN"), {"valueFrom", "secretKeyRef"}).IsMap());

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

}  // namespace
}  // namespace tessera::testing::deploy
