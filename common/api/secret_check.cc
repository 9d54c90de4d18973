#include "common/api/secret_check.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace tessera::api {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walk the longer length, so the time depends on the lengths only.
  const size_t n = std::max(a.size(), b.size());
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (x ^ y);
  }
  return diff == 0;
}

bool IsLoopbackHost(absl::string_view host) {
  host = absl::StripPrefix(absl::StripSuffix(host, "]"), "[");
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  const std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z (an IPv4 client on a dual-stack listener).
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

bool IsLoopbackPeer(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:") || absl::StartsWith(peer, "unix-abstract:")) return true;
  absl::string_view rest;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    rest = peer;
  } else if (absl::ConsumePrefix(&peer, "ipv6:")) {
    rest = peer;
  } else {
    return false;
  }
  // gRPC percent-encodes the brackets of IPv6 peers in some versions.
  const std::string decoded = absl::StrReplaceAll(rest, {{"%5B", "["}, {"%5D", "]"}});
  const size_t colon = decoded.rfind(':');
  if (colon == std::string::npos) return false;
  return IsLoopbackHost(absl::string_view(decoded).substr(0, colon));
}

MetadataSecret::MetadataSecret(std::string key, std::string prefix, std::string secret,
                               std::string what)
    : key_(std::move(key)),
      prefix_(std::move(prefix)),
      expected_(secret.empty() ? "" : absl::StrCat(prefix_, secret)),
      what_(std::move(what)) {}

grpc::Status MetadataSecret::Check(const grpc::ServerContextBase& context) const {
  if (expected_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(key_);
  if (it == metadata.end()) return CheckValue(std::nullopt);
  return CheckValue(absl::string_view(it->second.data(), it->second.size()));
}

grpc::Status MetadataSecret::CheckValue(std::optional<absl::string_view> value) const {
  if (expected_.empty()) return grpc::Status::OK;
  if (!value.has_value()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("missing '", key_, ": ", prefix_,
                                     "<token>' (this server requires ", what_, ")"));
  }
  if (!ConstantTimeEquals(*value, expected_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("the '", key_, "' ", prefix_.empty() ? "value" : "token",
                                     " does not match ", what_));
  }
  return grpc::Status::OK;
}

}  // namespace tessera::api
