#include "tests/integration/cluster_process.h"

#include <cstdlib>
#include <fstream>

#include "common/api/cluster_channel.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "tests/integration/router_cluster.h"
#include "tests/integration/worker_cluster.h"

namespace tessera::testing {

std::vector<std::string> TinyWorkerCommand(const std::string& host, const std::string& port_file,
                                           const std::vector<std::string>& args) {
  std::vector<std::string> argv = LoopbackWorkerCommand(/*ranks=*/1, host, port_file);
  argv.insert(argv.end(), {"--dummy", "tiny", "--threads", "1", "--num-kv-blocks", "256",
                           "--log-level", "info"});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::string> RouterCommand(const std::string& port_file,
                                       const std::vector<std::string>& args) {
  std::vector<std::string> argv = LoopbackRouterCommand(port_file);
  argv.insert(argv.end(), {"--health-interval-ms", "200", "--log-level", "info"});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

namespace {

// Runs `command` through the shell, appending its output to `log`.
bool Shell(const std::string& command, const std::string& log, std::string* error) {
  const int rc = std::system((command + " >>" + log + " 2>&1").c_str());
  if (rc != 0) {
    *error = "`" + command + "` failed (" + std::to_string(rc) + "):\n" + ReadTestFile(log);
    return false;
  }
  return true;
}

}  // namespace

bool MakeTestCertificates(const std::string& dir, TestCertificates* out, std::string* error) {
  const std::string log = dir + "/openssl.log";
  {
    std::ofstream ext(dir + "/node.ext");
    ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
           "extendedKeyUsage=serverAuth,clientAuth\n"
           "basicConstraints=CA:FALSE\n";
  }
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  for (const std::string name : {"ca", "rogue-ca"}) {
    if (!Shell("openssl req -x509 " + ec + " -days 2 -subj /CN=tessera-test-" + name + " -keyout " +
                   dir + "/" + name + ".key -out " + dir + "/" + name + ".pem",
               log, error)) {
      return false;
    }
  }
  for (const auto& [name, ca] : {std::pair<std::string, std::string>{"node", "ca"},
                                 std::pair<std::string, std::string>{"rogue", "rogue-ca"}}) {
    if (!Shell("openssl req " + ec + " -subj /CN=tessera-test-" + name + " -keyout " + dir + "/" +
                   name + ".key -out " + dir + "/" + name + ".csr",
               log, error) ||
        !Shell("openssl x509 -req -days 2 -in " + dir + "/" + name + ".csr -CA " + dir + "/" + ca +
                   ".pem -CAkey " + dir + "/" + ca + ".key -CAcreateserial -extfile " + dir +
                   "/node.ext -out " + dir + "/" + name + ".pem",
               log, error)) {
      return false;
    }
  }
  out->ca = dir + "/ca.pem";
  out->cert = dir + "/node.pem";
  out->key = dir + "/node.key";
  out->rogue_cert = dir + "/rogue.pem";
  out->rogue_key = dir + "/rogue.key";
  return true;
}

std::shared_ptr<grpc::Channel> ClusterTestChannel(const std::string& address,
                                                  const std::string& token,
                                                  const std::string& ca_pem,
                                                  const std::string& cert_pem,
                                                  const std::string& key_pem) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  if (ca_pem.empty()) {
    api::ClusterCredentials c;
    c.token = token;
    return api::CreateClusterChannel(address, c, args);
  }
  if (cert_pem.empty()) {
    // TLS without a client certificate (as a client of the router's Llm
    // would connect): not a cluster channel, so no token either.
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ca_pem;
    return grpc::CreateCustomChannel(address, grpc::SslCredentials(tls), args);
  }
  api::ClusterCredentials c;
  c.token = token;
  c.tls_ca = ca_pem;
  c.tls_cert = cert_pem;
  c.tls_key = key_pem;
  return api::CreateClusterChannel(address, c, args);
}

std::vector<std::string> ServiceMethods(const std::string& name) {
  std::vector<std::string> methods;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
  if (service == nullptr) return methods;
  for (int i = 0; i < service->method_count(); ++i) {
    methods.push_back("/" + name + "/" + std::string(service->method(i)->name()));
  }
  return methods;
}

grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method, std::chrono::milliseconds timeout) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1);
  auto call = stub.PrepareUnaryCall(&ctx, method, request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

}  // namespace tessera::testing
