#include "router/auth.h"

#include <utility>

namespace tessera::router {

BearerAuth::BearerAuth(std::string token, std::string what)
    : secret_("authorization", "Bearer ", std::move(token), std::move(what)) {}

grpc::Status BearerAuth::Check(const grpc::ServerContextBase& context) const {
  return secret_.Check(context);
}

grpc::Status BearerAuth::CheckAuthorization(std::optional<absl::string_view> authorization) const {
  return secret_.CheckValue(authorization);
}

}  // namespace tessera::router
