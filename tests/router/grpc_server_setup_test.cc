// What every Tessera gRPC server gets (common/grpc/server_setup.h), on the
// router's client and admin servers: requests that do not parse (invalid
// UTF-8 in a string field) are INVALID_ARGUMENT saying so, and server
// reflection v1 lists the services and describes them, the health service
// included, as grpcurl does (v1alpha too).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

namespace rv1 = grpc::reflection::v1;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;

// One unary or server-streaming call with a raw request message; its status.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, grpc::WriteOptions().set_last_message(), reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer response;
  do {
    call->Read(&response, reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
  } while (ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

class GrpcServerSetupTest : public RouterServiceTest {
 protected:
  void SetUp() override {
    StartWorkers(1);
    StartRouter();
  }
};

TEST_F(GrpcServerSetupTest, InvalidUtf8InAStringFieldIsInvalidArgument) {
  // GenerateRequest.request_id (field 1) = ff fe; then a valid prompt.
  const std::string bad_id = std::string("\x0a\x02\xff\xfe", 4) + "\x22\x02\x08\x01";
  grpc::Status s = RawCall(channel_, "/tessera.v1.Llm/Generate", bad_id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("invalid UTF-8"));
  EXPECT_THAT(s.error_message(), HasSubstr("tessera.v1.Llm/Generate"));

  // A unary method: TokenizeRequest.text (field 2) = c3 28.
  s = RawCall(channel_, "/tessera.v1.Llm/Tokenize", std::string("\x12\x02\xc3\x28", 4));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // The admin server too: AddWorkerRequest.address (field 1) = ff.
  s = RawCall(admin_channel_, "/tessera.v1.Admin/AddWorker", std::string("\x0a\x01\xff", 3));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // A valid message still works, and an unknown method is still UNIMPLEMENTED.
  v1::GenerateRequest ok = IdsRequest({1, 2});
  EXPECT_TRUE(RawCall(channel_, "/tessera.v1.Llm/Generate", ok.SerializeAsString()).ok());
  EXPECT_EQ(RawCall(channel_, "/tessera.v1.Llm/NoSuchMethod", "").error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(TotalGenerateCalls(), 1);
}

// A reflection client over `method` (v1's or v1alpha's: the same messages).
class ReflectionClient {
 public:
  ReflectionClient(std::shared_ptr<grpc::Channel> channel, const std::string& method)
      : stub_(std::move(channel)) {
    ctx_.set_deadline(In(absl::Seconds(10)));
    call_ = stub_.PrepareCall(&ctx_, method, &cq_);
    call_->StartCall(Tag());
    Wait();
  }
  ~ReflectionClient() {
    call_->WritesDone(Tag());
    Wait();
    grpc::Status status;
    call_->Finish(&status, Tag());
    Wait();
    EXPECT_TRUE(status.ok()) << status.error_message();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  rv1::ServerReflectionResponse Ask(const rv1::ServerReflectionRequest& request) {
    grpc::Slice slice(request.SerializeAsString());
    grpc::ByteBuffer buffer(&slice, 1);
    call_->Write(buffer, Tag());
    EXPECT_TRUE(Wait());
    grpc::ByteBuffer reply;
    call_->Read(&reply, Tag());
    EXPECT_TRUE(Wait());
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(reply.Dump(&slices).ok());
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    rv1::ServerReflectionResponse response;
    EXPECT_TRUE(response.ParseFromString(bytes));
    return response;
  }

  std::vector<std::string> ListServices() {
    rv1::ServerReflectionRequest r;
    r.set_list_services("");
    std::vector<std::string> names;
    const rv1::ServerReflectionResponse response = Ask(r);
    for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
    return names;
  }

  // Loads the files that declare `symbol` (and their dependencies) into
  // pool_, as grpcurl does; false when the server does not know it.
  bool Describe(const std::string& symbol) {
    rv1::ServerReflectionRequest r;
    r.set_file_containing_symbol(symbol);
    const rv1::ServerReflectionResponse response = Ask(r);
    if (!response.has_file_descriptor_response()) return false;
    // Dependencies come after their dependents: add in reverse order.
    const auto& files = response.file_descriptor_response().file_descriptor_proto();
    for (int i = files.size() - 1; i >= 0; --i) {
      google::protobuf::FileDescriptorProto proto;
      EXPECT_TRUE(proto.ParseFromString(files[i]));
      if (pool_.FindFileByName(proto.name()) == nullptr) pool_.BuildFile(proto);
    }
    return pool_.FindFileContainingSymbol(symbol) != nullptr;
  }
  const google::protobuf::DescriptorPool& pool() const { return pool_; }

 private:
  void* Tag() { return reinterpret_cast<void*>(++tags_); }
  bool Wait() {
    void* tag = nullptr;
    bool ok = false;
    cq_.Next(&tag, &ok);
    return ok;
  }

  grpc::GenericStub stub_;
  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  intptr_t tags_ = 0;
  google::protobuf::DescriptorPool pool_;
};

TEST_F(GrpcServerSetupTest, ReflectionV1ListsAndDescribesEveryServiceHealthIncluded) {
  for (const char* method : {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                             "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    SCOPED_TRACE(method);
    ReflectionClient client(channel_, method);
    const std::vector<std::string> services = client.ListServices();
    EXPECT_THAT(services,
                IsSupersetOf({"tessera.v1.Llm", "tessera.v1.Registry", "grpc.health.v1.Health",
                              "grpc.reflection.v1.ServerReflection",
                              "grpc.reflection.v1alpha.ServerReflection"}));
    ASSERT_TRUE(client.Describe("grpc.health.v1.Health"));
    const google::protobuf::ServiceDescriptor* health =
        client.pool().FindServiceByName("grpc.health.v1.Health");
    ASSERT_NE(health, nullptr);
    EXPECT_NE(health->FindMethodByName("Check"), nullptr);
    EXPECT_NE(health->FindMethodByName("Watch"), nullptr);
    ASSERT_TRUE(client.Describe("tessera.v1.Llm"));
    const google::protobuf::MethodDescriptor* generate =
        client.pool().FindMethodByName("tessera.v1.Llm.Generate");
    ASSERT_NE(generate, nullptr);
    EXPECT_TRUE(generate->server_streaming());
    EXPECT_EQ(generate->input_type()->full_name(), "tessera.v1.GenerateRequest");
    EXPECT_FALSE(client.Describe("no.such.Service"));
  }
  // The admin server has its own list.
  ReflectionClient admin(admin_channel_,
                         "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
  EXPECT_THAT(admin.ListServices(), Contains("tessera.v1.Admin"));
}

}  // namespace
}  // namespace tessera::router::testing
