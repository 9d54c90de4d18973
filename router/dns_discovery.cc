#include "router/dns_discovery.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/logging.h"

namespace tessera::router {
namespace {

constexpr absl::string_view kScheme = "dns:";
constexpr absl::string_view kExpected =
    "expected dns:///NAME:PORT (e.g. dns:///tessera-worker-headless.default.svc.cluster.local:"
    "50051)";

absl::Status BadTarget(absl::string_view target, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--workers ", target, ": ", why, "; ", kExpected));
}

// getaddrinfo's error as a Status: "no such name" is NOT_FOUND, a temporary
// failure UNAVAILABLE, the rest UNKNOWN.
absl::Status GaiError(const DnsTarget& target, int code) {
  const std::string message = absl::StrCat("resolving ", target.host, ": ", gai_strerror(code));
  switch (code) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
      return absl::NotFoundError(message);
    case EAI_AGAIN:
      return absl::UnavailableError(message);
    default:
      return absl::UnknownError(message);
  }
}

}  // namespace

bool IsDnsTarget(absl::string_view target) { return absl::StartsWith(target, kScheme); }

absl::StatusOr<DnsTarget> ParseDnsTarget(absl::string_view target) {
  if (!IsDnsTarget(target)) return BadTarget(target, "not a dns: target");
  absl::string_view rest = target.substr(kScheme.size());
  if (!absl::ConsumePrefix(&rest, "//")) {
    return BadTarget(target, "missing \"//\" after \"dns:\"");
  }
  // What follows "//" up to the next '/' is the DNS server (authority);
  // Tessera always uses the system resolver, so it must be empty.
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    return BadTarget(target, "missing the third '/' (dns:///NAME:PORT)");
  }
  if (slash != 0) {
    return BadTarget(target, absl::StrCat("a DNS server (\"", rest.substr(0, slash),
                                          "\") is not supported; the system resolver is used"));
  }
  rest.remove_prefix(1);

  DnsTarget out;
  absl::string_view port_text;
  if (absl::StartsWith(rest, "[")) {  // [IPv6]:PORT
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return BadTarget(target, "an IPv6 address must be written [ADDR]:PORT");
    }
    out.host = std::string(rest.substr(1, close - 1));
    port_text = rest.substr(close + 2);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return BadTarget(target, "missing :PORT");
    out.host = std::string(rest.substr(0, colon));
    port_text = rest.substr(colon + 1);
    if (absl::StrContains(out.host, ':')) {
      return BadTarget(target, "an IPv6 address must be written [ADDR]:PORT");
    }
  }
  if (out.host.empty()) return BadTarget(target, "empty NAME");
  if (absl::StrContains(out.host, '/')) return BadTarget(target, "NAME may not contain '/'");
  const bool digits =
      !port_text.empty() && port_text.size() <= 5 &&
      std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !absl::SimpleAtoi(port_text, &out.port) || out.port < 1 || out.port > 65535) {
    return BadTarget(target, absl::StrCat("bad PORT \"", port_text, "\" (1-65535)"));
  }
  return out;
}

Resolver SystemResolver() {
  return [](const DnsTarget& target) -> absl::StatusOr<std::vector<std::string>> {
    addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const int rc = getaddrinfo(target.host.c_str(), nullptr, &hints, &result);
    if (rc != 0) return GaiError(target, rc);
    std::vector<std::string> addresses;
    for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
      char ip[INET6_ADDRSTRLEN] = {};
      if (ai->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == nullptr) continue;
        addresses.push_back(absl::StrCat(ip, ":", target.port));
      } else if (ai->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
        if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)) == nullptr) continue;
        addresses.push_back(absl::StrCat("[", ip, "]:", target.port));
      }
    }
    freeaddrinfo(result);
    if (addresses.empty()) {
      return absl::NotFoundError(absl::StrCat("resolving ", target.host, ": no A/AAAA records"));
    }
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    return addresses;
  };
}

DnsDiscovery::DnsDiscovery(WorkerPool* pool, DnsTarget target, absl::Duration refresh,
                           Resolver resolver, absl::Duration drain_grace)
    : pool_(pool),
      target_(std::move(target)),
      refresh_(std::max(refresh, absl::Milliseconds(10))),
      resolver_(std::move(resolver)),
      drain_grace_(drain_grace) {}

DnsDiscovery::~DnsDiscovery() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status DnsDiscovery::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable()) return absl::FailedPreconditionError("DnsDiscovery already started");
    if (stopping_) return absl::FailedPreconditionError("DnsDiscovery is stopping");
  }
  absl::Status first = RefreshNow();
  if (!first.ok()) {
    spdlog::warn("dns discovery: {} (retrying every {})", first.message(),
                 absl::FormatDuration(refresh_));
  }
  absl::MutexLock lock(&mu_);
  thread_ = std::thread([this] { Loop(); });
  return first;
}

absl::Status DnsDiscovery::RefreshNow() {
  // mu_ is held across resolve + sync so refreshes apply in order: a slow,
  // older answer never overwrites a newer one.
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<std::string>> resolved = resolver_(target_);
  if (!resolved.ok()) {
    // Keep the last known set: a DNS outage must not empty the pool.
    return absl::Status(
        resolved.status().code(),
        absl::StrCat("dns:///", target_.host, ":", target_.port,
                     ": keeping the last known workers: ", resolved.status().message()));
  }
  std::vector<std::string> addresses = *std::move(resolved);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  spdlog::debug("dns:///{}:{} -> [{}]", target_.host, target_.port, absl::StrJoin(addresses, ", "));
  pool_->SyncSource(v1::WorkerInfo::SOURCE_DNS, addresses, drain_grace_);
  return absl::OkStatus();
}

void DnsDiscovery::Loop() {
  std::string last_error;  // log each distinct failure once, and the recovery
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), refresh_)) return;
    }
    const absl::Status status = RefreshNow();
    if (!status.ok()) {
      const std::string error(status.message());
      if (error != last_error) spdlog::warn("dns discovery: {}", error);
      last_error = error;
    } else if (!last_error.empty()) {
      spdlog::info("dns discovery of {}:{} resolves again", target_.host, target_.port);
      last_error.clear();
    }
  }
}

}  // namespace tessera::router
