// The secret checks (common/api/secret_check.h) and the cluster credential
// (cluster_auth.h, cluster_channel.h), in process: constant-time comparison,
// loopback hosts and peers, loading the TLS files, the start-up rule, and a
// real gRPC server whose handler calls ClusterAuth::Check, reached through
// CreateClusterChannel (which must add the token to every call).
#include "common/api/cluster_auth.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/synchronization/notification.h"
#include "common/api/cluster_channel.h"
#include "common/api/secret_check.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/admin.grpc.pb.h"

namespace tessera::api {
namespace {

TEST(SecretCheckTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("sesame", "sesame"));
  EXPECT_FALSE(ConstantTimeEquals("sesame", "sesamE"));
  EXPECT_FALSE(ConstantTimeEquals("sesame", "sesame "));
  EXPECT_FALSE(ConstantTimeEquals("sesame", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), "a"));
}

TEST(SecretCheckTest, LoopbackHostsAndPeers) {
  for (const char* host :
       {"localhost", "LocalHost", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "[::]", "10.0.0.1", "128.0.0.1", "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  for (const char* peer : {"ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "ipv6:%5B::1%5D:5000",
                           "ipv6:[::ffff:127.0.0.1]:80", "unix:/tmp/socket"}) {
    EXPECT_TRUE(IsLoopbackPeer(peer)) << peer;
  }
  for (const char* peer : {"ipv4:10.1.2.3:5000", "ipv6:[fe80::1]:5000", "127.0.0.1:5000",
                           "ipv4:", "", "dns:localhost:1"}) {
    EXPECT_FALSE(IsLoopbackPeer(peer)) << peer;
  }
}

TEST(SecretCheckTest, MetadataSecretValues) {
  const MetadataSecret bearer("authorization", "Bearer ", "k1", "the router's --api-key");
  EXPECT_TRUE(bearer.CheckValue("Bearer k1").ok());
  const grpc::Status missing = bearer.CheckValue(std::nullopt);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(missing.error_message(),
            "missing 'authorization: Bearer <token>' (this server requires the router's "
            "--api-key)");
  const grpc::Status wrong = bearer.CheckValue("Bearer k2");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message().find("k1"), std::string::npos) << "leaks the secret";
  EXPECT_EQ(wrong.error_message().find("k2"), std::string::npos) << "echoes the input";
  EXPECT_FALSE(bearer.CheckValue("k1").ok());
  const MetadataSecret off("authorization", "Bearer ", "", "x");
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.CheckValue(std::nullopt).ok());
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/cluster_auth_test_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ClusterCredentialsTest, LoadsAllThreeFilesOrNone) {
  absl::StatusOr<ClusterCredentials> none = LoadClusterCredentials("t", "", "", "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->token, "t");
  EXPECT_FALSE(none->tls());

  const std::string pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  const std::string cert = WriteFile("cert.pem", pem);
  const std::string key = WriteFile("key.pem", "-----BEGIN PRIVATE KEY-----\nBBBB\n");
  const std::string ca = WriteFile("ca.pem", pem);
  absl::StatusOr<ClusterCredentials> all = LoadClusterCredentials("", cert, key, ca);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->tls());
  EXPECT_EQ(all->tls_cert, pem);
  EXPECT_EQ(all->tls_ca, pem);

  absl::StatusOr<ClusterCredentials> partial = LoadClusterCredentials("", cert, "", ca);
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(partial.status().message().find("--tls-key"), std::string::npos) << partial.status();

  const std::string missing = ::testing::TempDir() + "/no/such/key.pem";
  absl::StatusOr<ClusterCredentials> unreadable = LoadClusterCredentials("", cert, missing, ca);
  EXPECT_EQ(unreadable.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unreadable.status().message().find("--tls-key " + missing), std::string::npos)
      << unreadable.status();

  const std::string text = WriteFile("not.pem", "hello");
  absl::StatusOr<ClusterCredentials> not_pem = LoadClusterCredentials("", cert, key, text);
  EXPECT_EQ(not_pem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_pem.status().message().find("--tls-ca"), std::string::npos) << not_pem.status();
}

TEST(ClusterCredentialsTest, NonLoopbackListenerNeedsACredential) {
  ClusterCredentials none;
  const absl::Status refused = CheckClusterListener("0.0.0.0", "--host", "tessera.v1.Worker", none);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("--host 0.0.0.0 (not loopback)"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("set --cluster-token or TESSERA_CLUSTER_TOKEN"),
            std::string::npos)
      << refused;
  EXPECT_TRUE(CheckClusterListener("127.0.0.1", "--host", "w", none).ok());
  EXPECT_TRUE(CheckClusterListener("localhost", "--host", "w", none).ok());
  ClusterCredentials token;
  token.token = "t";
  EXPECT_TRUE(CheckClusterListener("0.0.0.0", "--host", "w", token).ok());
}

// A Registry whose handlers answer ClusterAuth::Check's status.
class CheckedRegistry final : public v1::Registry::CallbackService {
 public:
  explicit CheckedRegistry(const ClusterAuth* auth) : auth_(auth) {}
  grpc::ServerUnaryReactor* RegisterWorker(grpc::CallbackServerContext* ctx,
                                           const v1::RegisterWorkerRequest* /*req*/,
                                           v1::RegisterWorkerResponse* /*resp*/) override {
    auto* r = ctx->DefaultReactor();
    r->Finish(auth_->Check(*ctx));
    return r;
  }

 private:
  const ClusterAuth* auth_;
};

class ClusterAuthServerTest : public ::testing::Test {
 protected:
  void Serve(const ClusterCredentials& server) {
    auth_ = std::make_unique<ClusterAuth>(server, "this test server");
    service_ = std::make_unique<CheckedRegistry>(auth_.get());
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", ClusterServerCredentials(server), &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  grpc::Status Call(const ClusterCredentials& client) {
    auto stub =
        v1::Registry::NewStub(CreateClusterChannel("127.0.0.1:" + std::to_string(port_), client));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterWorkerResponse resp;
    return stub->RegisterWorker(&ctx, {}, &resp);
  }

  std::unique_ptr<ClusterAuth> auth_;
  std::unique_ptr<CheckedRegistry> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(ClusterAuthServerTest, TheChannelSendsTheTokenAndTheServerChecksIt) {
  ClusterCredentials server;
  server.token = "s3cret";
  Serve(server);
  EXPECT_TRUE(Call(server).ok());
  const grpc::Status none = Call(ClusterCredentials{});
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(none.error_message().find("missing 'x-tessera-cluster-token"), std::string::npos)
      << none.error_message();
  ClusterCredentials wrong;
  wrong.token = "s3cre";
  const grpc::Status mismatch = Call(wrong);
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(mismatch.error_message().find("does not match --cluster-token"), std::string::npos)
      << mismatch.error_message();
}

TEST_F(ClusterAuthServerTest, WithoutATokenOnlyThisMachineGetsIn) {
  Serve(ClusterCredentials{});
  // The test's client is on loopback: allowed, with or without a token.
  EXPECT_TRUE(Call(ClusterCredentials{}).ok());
  ClusterCredentials any;
  any.token = "whatever";
  EXPECT_TRUE(Call(any).ok());
}

}  // namespace
}  // namespace tessera::api
