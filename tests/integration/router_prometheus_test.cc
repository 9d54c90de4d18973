// A real Prometheus server (Debian's `prometheus`) on loopback scraping a
// tessera-router (/metrics on its HTTP port) and two stories260K replicas
// (--metrics-port), every second. After a known workload — N greedy
// requests with a fixed max_tokens and ignore_eos — queries through
// Prometheus's HTTP API must give the exact totals:
//   sum(vllm:request_success_total) = N, sum(vllm:generation_tokens_total) =
//   N * max_tokens, the histograms' counts = N, the router's requests by
//   worker add up to N and equal each worker's own success count, one
//   placement per request.
// Also: the router's JSON request log has one line per request with the
// usage and timings, and `tessera workers --watch --count 2` draws two frames.
// Without the prometheus binary the test skips loudly (fails under CI=true).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/common.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/router_load.h"

namespace tessera::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int kRequests = 12;
constexpr int kMaxTokens = 6;
constexpr char kPrometheus[] = "/usr/bin/prometheus";

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// GET over HTTP/1.0 (no chunking; the server closes): {status, body}.
std::pair<int, std::string> HttpGet(int port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return {0, ""};
  }
  const std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return {0, ""};
  }
  std::string all;
  char buf[8192];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) < 0) break;
    if (p.revents == 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (all.size() < 12 || end == std::string::npos) return {0, ""};
  return {std::stoi(all.substr(9, 3)), all.substr(end + 4)};
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// An instant query: label set (as JSON text) -> value; nullopt when the
// query failed.
std::optional<std::map<std::string, double>> Query(int port, const std::string& promql) {
  const auto [status, body] = HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
  if (status != 200) return std::nullopt;
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
  std::map<std::string, double> out;
  for (const json& r : j["data"]["result"]) {
    out[r["metric"].dump()] = std::stod(r["value"][1].get<std::string>());
  }
  return out;
}

// The single value of `promql` (a sum), or -1.
double Scalar(int port, const std::string& promql) {
  const auto r = Query(port, promql);
  return r.has_value() && r->size() == 1 ? r->begin()->second : -1;
}

// The worker's metrics port: the second number of its port file.
int MetricsPort(const WorkerCluster& replica) {
  std::ifstream in(replica.marker());
  int grpc_port = 0, metrics_port = 0;
  in >> grpc_port >> metrics_port;
  return metrics_port;
}

class RouterPrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPrometheus, X_OK) != 0) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << kPrometheus << " is missing (Debian package prometheus)";
      }
      GTEST_SKIP() << "SKIPPED LOUDLY: " << kPrometheus
                   << " is missing (apt-get install prometheus; deploy/install-deps.sh)";
    }
    TESSERA_REQUIRE_STORIES();
  }
  void TearDown() override {
    if (prometheus_ != nullptr && HasFailure()) {
      std::fprintf(stderr, "--- prometheus log ---\n%s\n", prometheus_->LogTail().c_str());
    }
    if (cluster_ != nullptr) cluster_->PrintLogsIfTestFailed();
  }

  std::unique_ptr<RouterCluster> cluster_;
  std::unique_ptr<Process> prometheus_;
};

TEST_F(RouterPrometheusTest, ScrapedTotalsMatchAKnownWorkload) {
  RouterClusterOptions o;
  o.replicas = 2;
  o.worker_args = StoriesWorkerArgs({"--metrics-port", "0", "--disable-log-stats"});
  o.router.extra_args = {"--log-format", "json"};
  std::string error;
  cluster_ = RouterCluster::Start(o, &error);
  ASSERT_NE(cluster_, nullptr) << error;
  const std::string router_http = cluster_->http_address();

  // Prometheus: the router and both workers, every second; each worker
  // target labelled with the router's id for it.
  const std::string dir = MakeTempDir("tessera_prometheus");
  std::string config = absl::StrCat(
      "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
      "  - job_name: router\n    static_configs:\n      - targets: ['",
      router_http, "']\n  - job_name: workers\n    static_configs:\n");
  for (int i = 0; i < cluster_->replicas(); ++i) {
    const int port = MetricsPort(*cluster_->replica(i));
    ASSERT_GT(port, 0) << "replica " << i << " wrote no metrics port";
    absl::StrAppend(&config, "      - targets: ['127.0.0.1:", port,
                    "']\n        labels: {worker: '", cluster_->RouterId(i), "'}\n");
  }
  std::ofstream(dir + "/prometheus.yml") << config;
  const int prom_port = FreePort();
  ASSERT_GT(prom_port, 0);
  prometheus_ = Process::Spawn(
      {kPrometheus, "--config.file=" + dir + "/prometheus.yml",
       "--storage.tsdb.path=" + dir + "/data",
       absl::StrCat("--web.listen-address=127.0.0.1:", prom_port), "--log.level=warn"},
      dir + "/prometheus.log", &error);
  ASSERT_NE(prometheus_, nullptr) << error;
  ASSERT_TRUE(
      PollUntil(milliseconds(30000), [&] { return HttpGet(prom_port, "/-/ready").first == 200; }))
      << "prometheus never became ready:\n"
      << prometheus_->LogTail();
  // Every target is up before the workload, so no sample is missed.
  ASSERT_TRUE(PollUntil(milliseconds(30000), [&] { return Scalar(prom_port, "sum(up)") == 3; }))
      << "targets not up: sum(up) = " << Scalar(prom_port, "sum(up)");

  LoadDriver driver(
      cluster_->llm(), 4,
      [](int i) -> std::optional<v1::GenerateRequest> {
        if (i >= kRequests) return std::nullopt;
        return GreedyLlmRequest(VariedPrompt(7, i, 24), kMaxTokens, absl::StrCat("prom-", i));
      },
      cluster_->ClientCallOptions());
  const std::vector<CallRecord> records = driver.Join();
  ASSERT_EQ(records.size(), static_cast<size_t>(kRequests));
  ASSERT_EQ(DescribeFailures(records), "");

  const std::vector<std::pair<std::string, double>> expected = {
      {"sum(vllm:request_success_total)", kRequests},
      {"sum(vllm:generation_tokens_total)", kRequests * kMaxTokens},
      {"sum(vllm:e2e_request_latency_seconds_count)", kRequests},
      {"sum(vllm:time_to_first_token_seconds_count)", kRequests},
      {"sum(vllm:request_generation_tokens_count)", kRequests},
      {"sum(vllm:request_generation_tokens_sum)", kRequests * kMaxTokens},
      {"sum(tessera_router_requests_total)", kRequests},
      {"sum(tessera_router_requests_total{status=\"OK\"})", kRequests},
      {"sum(tessera_router_placements_total)", kRequests},
      {"sum(tessera_router_time_to_first_token_seconds_count)", kRequests},
      {"sum(tessera_router_grpc_request_duration_seconds_count)", kRequests},
      {"sum(tessera_router_worker_healthy)", 2},
  };
  for (const auto& entry : expected) {
    // Named copies: clang 14 cannot capture structured bindings in a lambda.
    const std::string& promql = entry.first;
    const double want = entry.second;
    double got = -1;
    EXPECT_TRUE(
        PollUntil(milliseconds(20000), [&] { return (got = Scalar(prom_port, promql)) == want; }))
        << promql << " = " << got << ", want " << want;
  }
  // Per worker: the router's count for it equals the worker's own, and the
  // counts add up to N.
  const auto router_by_worker = Query(prom_port, "sum by (worker) (tessera_router_requests_total)");
  const auto worker_own = Query(prom_port, "sum by (worker) (vllm:request_success_total)");
  ASSERT_TRUE(router_by_worker.has_value() && worker_own.has_value());
  double total = 0;
  for (const auto& [labels, v] : *router_by_worker) total += v;
  EXPECT_EQ(total, kRequests);
  EXPECT_EQ(*router_by_worker, *worker_own) << "router's per-worker counts vs the workers' own";

  // The request log: one JSON line per request.
  const std::string log = cluster_->RouterLogTail(1 << 20);
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StartsWith(line, "{")) continue;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("request_id")) continue;
    ++lines;
    SCOPED_TRACE(std::string(line));
    // The router's own random id; the client's id is only a label.
    EXPECT_TRUE(absl::StartsWith(j["request_id"].get<std::string>(), "router-"));
    EXPECT_TRUE(absl::StartsWith(j["client_request_id"].get<std::string>(), "prom-"));
    EXPECT_EQ(j["status"], "OK");
    EXPECT_EQ(j["finish_reason"], "length");
    EXPECT_EQ(j["completion_tokens"], kMaxTokens);
    EXPECT_EQ(j["prompt_tokens"], 24);
    EXPECT_TRUE(j["worker"].is_string());
    EXPECT_TRUE(j["ttft_ms"].is_number());
    EXPECT_LE(j["ttft_ms"].get<double>(), j["total_ms"].get<double>());
  }
  EXPECT_EQ(lines, kRequests) << "request log lines";

  // The live table, bounded by --count.
  const CliResult watch =
      cluster_->AdminCli({"workers", "--watch", "--interval", "0.2", "--count", "2"});
  EXPECT_EQ(watch.exit_code, 0) << watch.Describe();
  size_t frames = 0;
  for (size_t at = watch.out.find("--- tessera workers"); at != std::string::npos;
       at = watch.out.find("--- tessera workers", at + 1)) {
    ++frames;
  }
  EXPECT_EQ(frames, 2u) << watch.out;
  EXPECT_NE(watch.out.find(cluster_->RouterId(1)), std::string::npos) << watch.out;
}

}  // namespace
}  // namespace tessera::testing
