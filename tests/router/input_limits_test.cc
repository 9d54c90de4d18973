// The router's front ends against oversized input (common/api/field_limits.h)
// and its request ids: every oversized string or list is INVALID_ARGUMENT
// with a short message naming the field and the limit (never the value),
// before anything reaches a worker; workers only see the router's random
// ids, and a client's own id comes back as the responses' label.
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/api/field_limits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using L = api::FieldLimits;

constexpr size_t kMiB = 1 << 20;

void ExpectShortInvalidArgument(const grpc::Status& s, const std::string& field, size_t limit) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(field));
  EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat(limit)));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("qqqq")));
  EXPECT_LT(s.error_message().size(), 200u) << s.error_message();
}

class InputLimitsTest : public RouterServiceTest {
 protected:
  void SetUp() override {
    StartWorkers(1);
    StartRouter();
  }
};

TEST_F(InputLimitsTest, AOneMegabyteRequestIdIsInvalidArgument) {
  v1::GenerateRequest r = IdsRequest({1, 2, 3});
  r.set_request_id(std::string(kMiB, 'q'));
  Stream s = Generate(r);
  ExpectShortInvalidArgument(s.status, "request_id", L::kRequestIdBytes);
  EXPECT_TRUE(s.messages.empty());
  EXPECT_EQ(TotalGenerateCalls(), 0);
}

TEST_F(InputLimitsTest, AOneMegabyteModelNameIsInvalidArgumentWithAShortMessage) {
  v1::GenerateRequest r = IdsRequest({1, 2, 3});
  r.set_model(std::string(kMiB, 'q'));
  Stream s = Generate(r);
  ExpectShortInvalidArgument(s.status, "model", L::kModelNameBytes);

  v1::TokenizeRequest t;
  t.set_model(std::string(kMiB, 'q'));
  t.set_text("hi");
  v1::TokenizeResponse tr;
  grpc::ClientContext ctx;
  ExpectShortInvalidArgument(llm_->Tokenize(&ctx, t, &tr), "model", L::kModelNameBytes);

  // A name within the limit but not served: NOT_FOUND quoting it truncated.
  v1::GenerateRequest unknown = IdsRequest({1});
  unknown.set_model(std::string(L::kModelNameBytes, 'q'));
  Stream u = Generate(unknown);
  EXPECT_EQ(u.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(u.status.error_message().size(), 200u) << u.status.error_message();
}

TEST_F(InputLimitsTest, StopStringsAndChatMessagesAreBounded) {
  v1::GenerateRequest r = IdsRequest({1, 2});
  for (int i = 0; i < 3; ++i) r.mutable_sampling()->add_stop(std::string(2000, 'q'));
  ExpectShortInvalidArgument(Generate(r).status, "sampling.stop", L::kStopStringBytes);

  v1::GenerateRequest chat;
  for (size_t i = 0; i <= L::kChatMessages; ++i) {
    v1::ChatMessage* m = chat.mutable_chat()->add_messages();
    m->set_role("user");
    m->set_content("q");
  }
  ExpectShortInvalidArgument(Generate(chat).status, "chat.messages", L::kChatMessages);
  EXPECT_EQ(TotalGenerateCalls(), 0);
}

TEST_F(InputLimitsTest, AOneMegabyteHostnameInAddWorkerIsInvalidArgument) {
  v1::AddWorkerRequest add;
  add.set_address(absl::StrCat(std::string(kMiB, 'q'), ":50051"));
  v1::AddWorkerResponse added;
  grpc::ClientContext ctx;
  ExpectShortInvalidArgument(admin_->AddWorker(&ctx, add, &added), "address", L::kAddressBytes);

  v1::ListWorkersResponse list;
  grpc::ClientContext list_ctx;
  ASSERT_TRUE(admin_->ListWorkers(&list_ctx, v1::ListWorkersRequest(), &list).ok());
  EXPECT_EQ(list.workers_size(), 1) << "the refused worker must not be listed";

  v1::DrainWorkerRequest drain;
  drain.set_id(std::string(kMiB, 'q'));
  v1::DrainWorkerResponse drained;
  grpc::ClientContext drain_ctx;
  ExpectShortInvalidArgument(admin_->DrainWorker(&drain_ctx, drain, &drained), "id",
                             L::kWorkerIdBytes);
}

TEST_F(InputLimitsTest, RegistrationsWithOversizedAddressesOrIdsAreRefused) {
  v1::RegisterWorkerRequest reg;
  reg.set_address(absl::StrCat(std::string(kMiB, 'q'), ":50051"));
  v1::RegisterWorkerResponse resp;
  grpc::ClientContext ctx;
  ExpectShortInvalidArgument(registry_->RegisterWorker(&ctx, reg, &resp), "address",
                             L::kAddressBytes);

  reg.set_address("127.0.0.1:1");
  reg.set_worker_id(std::string(kMiB, 'q'));
  grpc::ClientContext ctx2;
  ExpectShortInvalidArgument(registry_->RegisterWorker(&ctx2, reg, &resp), "worker_id",
                             L::kWorkerIdBytes);

  v1::HeartbeatRequest hb;
  hb.set_worker_id(std::string(kMiB, 'q'));
  v1::HeartbeatResponse hb_resp;
  grpc::ClientContext ctx3;
  ExpectShortInvalidArgument(registry_->Heartbeat(&ctx3, hb, &hb_resp), "worker_id",
                             L::kWorkerIdBytes);
}

// The worker sees only the router's random ids; the client sees its own id
// (or, when it gave none, the router's) on every message.
TEST_F(InputLimitsTest, WorkersSeeRandomIdsAndClientsTheirOwn) {
  v1::GenerateRequest mine = IdsRequest({1, 2});
  mine.set_request_id("client-7");
  Stream s = Generate(mine);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_FALSE(s.messages.empty());
  for (const v1::GenerateResponse& m : s.messages) EXPECT_EQ(m.request_id(), "client-7");
  const std::string upstream = workers_[0]->last_request()->request_id();
  EXPECT_THAT(upstream, MatchesRegex("rt-[0-9a-f]{32}"));

  std::set<std::string> seen = {upstream};
  for (int i = 0; i < 20; ++i) {
    Stream anon = Generate(IdsRequest({1, 2}));
    ASSERT_TRUE(anon.status.ok()) << anon.status.error_message();
    const std::string id = workers_[0]->last_request()->request_id();
    EXPECT_THAT(id, MatchesRegex("rt-[0-9a-f]{32}"));
    EXPECT_EQ(anon.messages.back().request_id(), id) << "no client id: the router's is shown";
    EXPECT_TRUE(seen.insert(id).second) << "repeated id " << id;
  }
  // The same client id twice: both run, each under its own upstream id.
  Stream again = Generate(mine);
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.messages.back().request_id(), "client-7");
  EXPECT_NE(workers_[0]->last_request()->request_id(), upstream);
}

}  // namespace
}  // namespace tessera::router::testing
