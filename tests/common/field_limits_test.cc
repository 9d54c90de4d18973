// The size limits on client- and worker-sent strings and lists
// (common/api/field_limits.h): each field over its limit is INVALID_ARGUMENT
// naming the field and the limit, without quoting the value; the same
// checks run inside ValidateGenerateRequest (both router and worker).
#include "common/api/field_limits.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/api/request_limits.h"
#include "common/api/request_validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using L = FieldLimits;

constexpr size_t kMiB = 1 << 20;

// A value whose every byte is 'q', so a message that quoted it would show
// "qqqq".
std::string Big(size_t n) { return std::string(n, 'q'); }

void ExpectRefused(const absl::Status& s, const std::string& field, size_t limit) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr(field)) << s;
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat(limit))) << s;
  EXPECT_THAT(s.message(), Not(HasSubstr("qqqq"))) << "the message quotes the value";
  EXPECT_LT(s.message().size(), 200u) << s;
}

v1::GenerateRequest IdsRequest() {
  v1::GenerateRequest r;
  r.mutable_token_ids()->add_ids(1);
  return r;
}

TEST(FieldLimits, AOneMegabyteRequestIdIsRefused) {
  v1::GenerateRequest r = IdsRequest();
  r.set_request_id(Big(kMiB));
  ExpectRefused(CheckGenerateRequestSizes(r), "request_id", L::kRequestIdBytes);
  r.set_request_id(Big(L::kRequestIdBytes));
  EXPECT_TRUE(CheckGenerateRequestSizes(r).ok()) << "the limit itself is allowed";
}

TEST(FieldLimits, AOneMegabyteModelNameIsRefused) {
  v1::GenerateRequest r = IdsRequest();
  r.set_model(Big(kMiB));
  ExpectRefused(CheckGenerateRequestSizes(r), "model", L::kModelNameBytes);
  v1::TokenizeRequest t;
  t.set_model(Big(kMiB));
  ExpectRefused(CheckTokenizeRequestSizes(t), "model", L::kModelNameBytes);
}

TEST(FieldLimits, PromptTextAndTokenizeText) {
  v1::GenerateRequest r;
  r.set_text(Big(L::kPromptTextBytes + 1));
  ExpectRefused(CheckGenerateRequestSizes(r), "text", L::kPromptTextBytes);
  v1::TokenizeRequest t;
  t.set_text(Big(L::kPromptTextBytes + 1));
  ExpectRefused(CheckTokenizeRequestSizes(t), "text", L::kPromptTextBytes);
  t.set_text("hello");
  EXPECT_TRUE(CheckTokenizeRequestSizes(t).ok());
}

TEST(FieldLimits, StopStringsCountAndTotalBytes) {
  v1::GenerateRequest r = IdsRequest();
  for (size_t i = 0; i <= L::kStopStrings; ++i) r.mutable_sampling()->add_stop("x");
  ExpectRefused(CheckGenerateRequestSizes(r), "sampling.stop", L::kStopStrings);

  v1::GenerateRequest bytes = IdsRequest();
  // Four strings that are each fine, but too much together.
  for (int i = 0; i < 4; ++i) bytes.mutable_sampling()->add_stop(Big(L::kStopStringBytes / 3));
  ExpectRefused(CheckGenerateRequestSizes(bytes), "sampling.stop", L::kStopStringBytes);

  v1::GenerateRequest ids = IdsRequest();
  for (size_t i = 0; i <= L::kStopTokenIds; ++i) ids.mutable_sampling()->add_stop_token_ids(1);
  ExpectRefused(CheckGenerateRequestSizes(ids), "sampling.stop_token_ids", L::kStopTokenIds);
}

TEST(FieldLimits, ChatMessagesCountRoleNameAndBytes) {
  v1::GenerateRequest many;
  for (size_t i = 0; i <= L::kChatMessages; ++i) {
    many.mutable_chat()->add_messages()->set_role("user");
  }
  ExpectRefused(CheckGenerateRequestSizes(many), "chat.messages", L::kChatMessages);

  v1::GenerateRequest role;
  role.mutable_chat()->add_messages()->set_role(Big(L::kChatRoleBytes + 1));
  ExpectRefused(CheckGenerateRequestSizes(role), "chat.messages[0].role", L::kChatRoleBytes);

  v1::GenerateRequest name;
  name.mutable_chat()->add_messages()->set_name(Big(L::kChatNameBytes + 1));
  ExpectRefused(CheckGenerateRequestSizes(name), "chat.messages[0].name", L::kChatNameBytes);

  v1::GenerateRequest bytes;
  for (int i = 0; i < 3; ++i) {
    v1::ChatMessage* m = bytes.mutable_chat()->add_messages();
    m->set_role("user");
    m->set_content(Big(L::kChatBytes / 2));
  }
  ExpectRefused(CheckGenerateRequestSizes(bytes), "chat", L::kChatBytes);
}

TEST(FieldLimits, WorkerAddressesAndIds) {
  ExpectRefused(CheckWorkerAddress("address", Big(kMiB) + ":50051"), "address", L::kAddressBytes);
  EXPECT_EQ(CheckWorkerAddress("address", "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckWorkerAddress("address", "host name:1").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckWorkerAddress("address", "host\n:1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckWorkerAddress("address", "worker-0.tessera.svc.cluster.local:50051").ok());
  EXPECT_TRUE(CheckWorkerAddress("address", "[::1]:50051").ok());

  ExpectRefused(CheckWorkerId("worker_id", Big(kMiB)), "worker_id", L::kWorkerIdBytes);
  EXPECT_EQ(CheckWorkerId("worker_id", "w\x01").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckWorkerId("worker_id", "").ok());
  EXPECT_TRUE(CheckWorkerId("worker_id", "gpu-node-3 replica").ok());
}

TEST(FieldLimits, TruncatedKeepsShortValuesAndCutsLongOnesOnACharacter) {
  EXPECT_EQ(Truncated("short"), "short");
  EXPECT_EQ(Truncated(Big(100), 10), "qqqqqqqqqq...(100 bytes)");
  // "é" is two bytes: a cut after 3 bytes of "aéé" falls inside the second
  // "é" and backs off to the character boundary.
  EXPECT_EQ(Truncated("a\xC3\xA9\xC3\xA9", 4), "a\xC3\xA9...(5 bytes)");
}

TEST(FieldLimits, ModelNotFoundQuotesATruncatedName) {
  const absl::Status s = CheckModelName(Big(L::kModelNameBytes), "stories", "router");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("(", L::kModelNameBytes, " bytes)")));
  EXPECT_LT(s.message().size(), 200u) << s;
}

// ValidateGenerateRequest runs the size checks first: the worker's service
// and engine path refuses an oversized request id even when everything else
// is valid.
TEST(FieldLimits, ValidateGenerateRequestChecksSizesFirst) {
  RequestLimits limits;
  limits.model_name = "m";
  limits.vocab_size = 100;
  limits.max_model_len = 64;
  absl::StatusOr<std::shared_ptr<const ModelText>> text =
      ModelText::Load({}, std::nullopt, /*byte_vocab_size=*/100);
  ASSERT_TRUE(text.ok()) << text.status();
  v1::GenerateRequest r = IdsRequest();
  r.set_request_id(Big(kMiB));
  r.set_model(Big(kMiB));  // would be NOT_FOUND, but the sizes come first
  absl::StatusOr<ValidatedRequest> v = ValidateGenerateRequest(r, limits, **text);
  ExpectRefused(v.status(), "request_id", L::kRequestIdBytes);
  r.set_request_id("ok");
  r.set_model("m");
  EXPECT_TRUE(ValidateGenerateRequest(r, limits, **text).ok());
}

}  // namespace
}  // namespace tessera::api
