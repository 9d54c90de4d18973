// Checks of the observability files under deploy/, with no cluster:
//   - deploy/grafana/tessera-dashboard.json is Grafana dashboard JSON (the
//     schema fields, unique panel ids, grid positions inside 24 columns,
//     every panel with a datasource and queries with refIds) whose queries
//     use only metric names the code exports: the names are read from the
//     sources (every "vllm:…" / "tessera_…" string literal under router/ and
//     worker/), not from a list kept here; each query parses as PromQL
//     (promtool check rules, with Grafana's $variables filled in);
//   - deploy/prometheus/prometheus.yml: the Kubernetes pod job keeps pods by
//     the prometheus.io/* annotations, and the rest passes promtool check
//     config (Debian's promtool has no Kubernetes discovery: that job is
//     checked structurally);
//   - in every render of deploy/k8s: the router and worker pods carry the
//     prometheus.io annotations, on the port their flags serve /metrics on
//     (--http-port, --metrics-port), which is a container port.
// Without promtool the PromQL / config checks skip loudly (fail under CI=true).
#include <regex>

#include "nlohmann/json.hpp"
#include "tests/deploy/manifests_test_util.h"
#include "tests/testing/promtool.h"

namespace tessera::testing::deploy {
namespace {

using nlohmann::json;

std::string DashboardPath() { return SourceDir() + "/deploy/grafana/tessera-dashboard.json"; }
std::string PrometheusConfigPath() { return SourceDir() + "/deploy/prometheus/prometheus.yml"; }

// Metric names as string literals in the C++ sources that register them.
std::set<std::string> ExportedMetricNames() {
  static const std::regex literal(R"re("((vllm:|tessera_)[a-zA-Z0-9_:]+)")re");
  std::set<std::string> names;
  for (const char* dir : {"router", "worker"}) {
    for (const auto& entry : fs::recursive_directory_iterator(SourceDir() + "/" + dir)) {
      const std::string ext = entry.path().extension();
      if (ext != ".cc" && ext != ".h") continue;
      const std::string text = ReadText(entry.path());
      for (auto it = std::sregex_iterator(text.begin(), text.end(), literal);
           it != std::sregex_iterator(); ++it) {
        names.insert((*it)[1]);
      }
    }
  }
  return names;
}

// The metric names a PromQL expression uses (vllm:… and tessera_…).
std::set<std::string> MetricsIn(const std::string& expr) {
  static const std::regex name(R"re((^|[^a-zA-Z0-9_:"])((vllm:|tessera_)[a-zA-Z0-9_:]*))re");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator();
       ++it) {
    out.insert((*it)[2]);
  }
  return out;
}

// A histogram's series name -> the family name.
std::string Family(const std::string& series, const std::set<std::string>& exported) {
  if (exported.contains(series)) return series;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(series, suffix)) {
      const std::string base = series.substr(0, series.size() - strlen(suffix));
      if (exported.contains(base)) return base;
    }
  }
  return series;
}

json LoadDashboard() {
  return json::parse(ReadText(DashboardPath()), nullptr, /*allow_exceptions=*/false);
}

// Every query of every panel (rows excluded).
std::vector<std::string> Queries(const json& dashboard) {
  std::vector<std::string> out;
  for (const json& p : dashboard["panels"]) {
    if (p.value("type", "") == "row") continue;
    for (const json& t : p["targets"]) out.push_back(t.value("expr", ""));
  }
  return out;
}

TEST(GrafanaDashboard, IsDashboardJson) {
  const json d = LoadDashboard();
  ASSERT_FALSE(d.is_discarded()) << DashboardPath() << " is not JSON";
  for (const char* field : {"title", "uid", "schemaVersion", "panels", "templating", "time"}) {
    EXPECT_TRUE(d.contains(field)) << "no " << field;
  }
  EXPECT_TRUE(d["schemaVersion"].is_number_integer());
  EXPECT_TRUE(d["panels"].is_array() && d["panels"].size() >= 10) << "too few panels";
  std::set<int> ids;
  for (const json& p : d["panels"]) {
    const std::string title = p.value("title", "");
    SCOPED_TRACE(title);
    EXPECT_FALSE(title.empty()) << "a panel without a title";
    ASSERT_TRUE(p.contains("id") && p["id"].is_number_integer());
    EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "duplicate panel id " << p["id"];
    const json& g = p["gridPos"];
    ASSERT_TRUE(g.is_object()) << "no gridPos";
    for (const char* k : {"h", "w", "x", "y"}) EXPECT_TRUE(g[k].is_number_integer()) << k;
    EXPECT_LE(g["x"].get<int>() + g["w"].get<int>(), 24) << "wider than the grid";
    if (p.value("type", "") == "row") continue;
    EXPECT_FALSE(p.value("type", "").empty());
    EXPECT_TRUE(p["datasource"].is_object()) << "no datasource";
    ASSERT_TRUE(p["targets"].is_array() && !p["targets"].empty()) << "no queries";
    std::set<std::string> refs;
    for (const json& t : p["targets"]) {
      EXPECT_FALSE(t.value("expr", "").empty()) << "a query without expr";
      EXPECT_TRUE(refs.insert(t.value("refId", "")).second) << "duplicate refId";
    }
  }
}

TEST(GrafanaDashboard, EveryQueryUsesExportedMetrics) {
  const std::set<std::string> exported = ExportedMetricNames();
  ASSERT_GE(exported.size(), 25u) << "the source scan found too few metric names";
  const json d = LoadDashboard();
  ASSERT_FALSE(d.is_discarded());
  std::set<std::string> used;
  for (const std::string& expr : Queries(d)) {
    const std::set<std::string> names = MetricsIn(expr);
    EXPECT_FALSE(names.empty()) << "no Tessera or vLLM metric in: " << expr;
    for (const std::string& series : names) {
      const std::string family = Family(series, exported);
      EXPECT_TRUE(exported.contains(family)) << series << " (in " << expr << ") is not exported";
      used.insert(family);
    }
  }
  // What the issue asks the dashboard to show.
  for (const char* m : {"vllm:request_success_total", "vllm:time_to_first_token_seconds",
                        "vllm:inter_token_latency_seconds", "vllm:generation_tokens_total",
                        "vllm:kv_cache_usage_perc", "vllm:prefix_cache_hits_total",
                        "vllm:prefix_cache_queries_total", "vllm:num_preemptions_total",
                        "tessera_router_queue_length", "tessera_router_requests_total"}) {
    EXPECT_TRUE(used.contains(m)) << "the dashboard shows no " << m;
  }
}

// Runs promtool, or skips loudly (fails under CI=true) without it.
#define TESSERA_REQUIRE_PROMTOOL(promtool)                                              \
  const std::string promtool = FindPromtool();                                          \
  if (promtool.empty()) {                                                               \
    if (RunningUnderCi()) FAIL() << "promtool is missing (Debian package prometheus)";  \
    GTEST_SKIP() << "SKIPPED LOUDLY: promtool is missing (apt-get install prometheus)"; \
  }

int RunShell(const std::string& command, std::string* output) {
  const std::string out_path =
      fs::temp_directory_path() / ("tessera_obs_" + std::to_string(getpid()));
  const int status = std::system((command + " > " + out_path + " 2>&1").c_str());
  *output = ReadText(out_path);
  fs::remove(out_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(GrafanaDashboard, QueriesParseAsPromql) {
  TESSERA_REQUIRE_PROMTOOL(promtool);
  const json d = LoadDashboard();
  ASSERT_FALSE(d.is_discarded());
  // Each query as a recording rule: promtool parses its PromQL.
  YAML::Emitter rules;
  rules << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  rules << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "dashboard";
  rules << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  int n = 0;
  for (std::string expr : Queries(d)) {
    expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "5m");
    expr = std::regex_replace(expr, std::regex(R"(\$model_name)"), ".*");
    rules << YAML::BeginMap << YAML::Key << "record" << YAML::Value
          << absl::StrCat("tessera:dashboard_query_", n++) << YAML::Key << "expr" << YAML::Value
          << expr << YAML::EndMap;
  }
  rules << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  const std::string path =
      fs::temp_directory_path() / ("tessera_dashboard_rules_" + std::to_string(getpid()) + ".yml");
  std::ofstream(path) << rules.c_str();
  std::string output;
  const int rc = RunShell(promtool + " check rules " + path, &output);
  fs::remove(path);
  EXPECT_EQ(rc, 0) << output;
}

TEST(PrometheusConfig, KubernetesJobUsesThePodAnnotations) {
  const YAML::Node config = YAML::LoadFile(PrometheusConfigPath());
  const YAML::Node jobs = Get(config, "scrape_configs");
  ASSERT_TRUE(jobs.IsSequence());
  bool pods = false;
  for (const YAML::Node& job : jobs) {
    if (Str(job, "job_name") != "tessera-pods") continue;
    pods = true;
    ASSERT_TRUE(Get(job, "kubernetes_sd_configs").IsSequence());
    EXPECT_EQ(Str(Get(job, "kubernetes_sd_configs")[0], "role"), "pod");
    std::set<std::string> sources;
    for (const YAML::Node& r : Get(job, "relabel_configs")) {
      for (const YAML::Node& s : Get(r, "source_labels")) sources.insert(s.as<std::string>());
    }
    for (const char* a : {"scrape", "port", "path"}) {
      EXPECT_TRUE(
          sources.contains(absl::StrCat("__meta_kubernetes_pod_annotation_prometheus_io_", a)))
          << "the pod job ignores prometheus.io/" << a;
    }
  }
  EXPECT_TRUE(pods) << "no tessera-pods job";
}

TEST(PrometheusConfig, StaticPartPassesPromtool) {
  TESSERA_REQUIRE_PROMTOOL(promtool);
  YAML::Node config = YAML::LoadFile(PrometheusConfigPath());
  YAML::Node kept(YAML::NodeType::Sequence);
  for (const YAML::Node& job : config["scrape_configs"]) {
    if (!Has(job, "kubernetes_sd_configs")) kept.push_back(job);
  }
  ASSERT_GT(kept.size(), 0u);
  config["scrape_configs"] = kept;
  const std::string path =
      fs::temp_directory_path() / ("tessera_prometheus_" + std::to_string(getpid()) + ".yml");
  YAML::Emitter out;
  out << config;
  std::ofstream(path) << out.c_str();
  std::string output;
  const int rc = RunShell(promtool + " check config " + path, &output);
  fs::remove(path);
  EXPECT_EQ(rc, 0) << output;
}

TEST(K8sMetrics, PodsAreAnnotatedForScrapingOnTheirMetricsPorts) {
  ASSERT_HELPS();
  for (const std::string& dir : RenderDirs()) {
    absl::StatusOr<RenderedKustomization> k = RenderKustomization(K8sDir() + "/" + dir);
    ASSERT_TRUE(k.ok()) << k.status();
    const Render r = MakeRender(dir, *std::move(k));
    for (const auto& [program, flag] :
         {std::pair{Program::kRouter, "http_port"}, std::pair{Program::kWorker, "metrics_port"}}) {
      const ContainerView* c = r.Running(program);
      ASSERT_NE(c, nullptr) << dir;
      SCOPED_TRACE(c->where);
      const Invocation* inv = FindInvocation(*c, program);
      ASSERT_NE(inv, nullptr);
      const std::optional<std::string> port = FlagOrDefault(*inv, flag);
      ASSERT_TRUE(port.has_value()) << "--" << flag;
      const YAML::Node ann = Path(c->workload, {"spec", "template", "metadata", "annotations"});
      EXPECT_EQ(Str(ann, "prometheus.io/scrape"), "true");
      EXPECT_EQ(Str(ann, "prometheus.io/path"), "/metrics");
      EXPECT_EQ(Str(ann, "prometheus.io/port"), *port) << "not the --" << flag << " port";
      bool exposed = false;
      for (const YAML::Node& p : Get(c->container, "ports")) {
        exposed |= absl::StrCat(Int(Get(p, "containerPort")).value_or(-1)) == *port;
      }
      EXPECT_TRUE(exposed) << "port " << *port << " is not a container port";
    }
  }
}

}  // namespace
}  // namespace tessera::testing::deploy
