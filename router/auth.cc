#include "router/auth.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tessera::router {

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

BearerAuth::BearerAuth(std::string token, std::string what)
    : expected_(token.empty() ? "" : absl::StrCat("Bearer ", token)), what_(std::move(what)) {}

grpc::Status BearerAuth::Check(const grpc::ServerContextBase& context) const {
  if (expected_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return CheckAuthorization(std::nullopt);
  return CheckAuthorization(absl::string_view(it->second.data(), it->second.size()));
}

grpc::Status BearerAuth::CheckAuthorization(std::optional<absl::string_view> authorization) const {
  if (expected_.empty()) return grpc::Status::OK;
  if (!authorization.has_value()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("missing 'authorization: Bearer <token>' (this server "
                                     "requires ",
                                     what_, ")"));
  }
  if (!ConstantTimeEquals(*authorization, expected_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("the bearer token does not match ", what_));
  }
  return grpc::Status::OK;
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
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace tessera::router
