#include "common/grpc/server_setup.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc/parse_error_interceptor.h"
#include "common/grpc/reflection_v1.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/impl/server_initializer.h"

namespace tessera::rpc {
namespace {

// Registers the v1 reflection service with the server and gives it the
// server's service list.
class ReflectionV1Plugin final : public grpc::ServerBuilderPlugin {
 public:
  std::string name() override { return "tessera_reflection_v1"; }
  void InitServer(grpc::ServerInitializer* si) override {
    si->RegisterService(service_);
    service_->Bind(si->GetServiceList());
  }
  void Finish(grpc::ServerInitializer* /*si*/) override {}
  void ChangeArguments(const std::string& /*name*/, void* /*value*/) override {}
  bool has_async_methods() const override { return false; }

 private:
  std::shared_ptr<ReflectionV1Service> service_ = std::make_shared<ReflectionV1Service>();
};

class TesseraServerOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* args) override {
    args->SetInt(GRPC_ARG_ALLOW_REUSEPORT, 0);
  }
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ReflectionV1Plugin>());
  }
};

}  // namespace

void ConfigureServerBuilder(grpc::ServerBuilder& builder) {
  // Linking health.pb.cc is not enough: a static library's object file only
  // joins the binary (and registers its descriptors) when something in it
  // is used.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();  // v1alpha; idempotent
  builder.SetOption(std::make_unique<TesseraServerOption>());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<ParseErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

absl::Status ListenError(absl::string_view address, absl::string_view flags) {
  return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (", flags,
                                             "): the port is in use, or the host is not an "
                                             "address of this machine"));
}

absl::Status CheckPortFlag(absl::string_view flag, int64_t port, bool may_be_off) {
  if ((port >= 0 && port <= 65535) || (may_be_off && port == -1)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(flag, " must be ", may_be_off ? "-1 (off), " : "",
                                                 "0 (a free port) or a port in 1-65535, got ",
                                                 port));
}

}  // namespace tessera::rpc
