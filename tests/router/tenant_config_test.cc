#include "router/tenant_config.h"

#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(TenantConfigTest, ParsesTenantsWithDefaults) {
  absl::StatusOr<std::vector<KeyedTenant>> t = ParseApiKeys(R"({"tenants": [
    {"name": "chat", "key": "sk-chat-0123", "weight": 4},
    {"name": "batch", "key": "sk-batch-0123", "weight": 0.5, "max_concurrent_requests": 64,
     "tokens_per_minute": 2000000, "max_priority": 10}]})");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 2u);
  const TenantPolicy& chat = (*t)[0].policy;
  EXPECT_EQ((*t)[0].key, "sk-chat-0123");
  EXPECT_EQ(chat.name, "chat");
  EXPECT_EQ(chat.metrics_label, "chat");
  EXPECT_EQ(chat.weight, 4);
  EXPECT_EQ(chat.max_concurrent_requests, 0);
  EXPECT_EQ(chat.tokens_per_minute, 0);
  EXPECT_EQ(chat.max_priority, std::numeric_limits<int32_t>::min());
  EXPECT_EQ(chat.ClampPriority(-100), -100);  // any priority
  const TenantPolicy& batch = (*t)[1].policy;
  EXPECT_EQ(batch.weight, 0.5);
  EXPECT_EQ(batch.max_concurrent_requests, 64);
  EXPECT_EQ(batch.tokens_per_minute, 2000000);
  EXPECT_EQ(batch.max_priority, 10);
  // Lower runs first: asking for 0 (more urgent than 10) gets 10; 20 stays.
  EXPECT_EQ(batch.ClampPriority(0), 10);
  EXPECT_EQ(batch.ClampPriority(20), 20);
}

// Each bad file is refused with a message naming the entry and the field.
TEST(TenantConfigTest, RefusesBadFilesNamingTheProblem) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "top level must be a JSON object"},
      {"{}", "\"tenants\" (an array"},
      {R"({"tenants": []})", "\"tenants\" is empty"},
      {R"({"tenants": [1]})", "tenants[0] must be an object"},
      {R"({"tenants": [{"key": "sk-0123456"}]})", "tenants[0]: \"name\""},
      {R"({"tenants": [{"name": "a b", "key": "sk-0123456"}]})", "[A-Za-z0-9_.-]"},
      {R"({"tenants": [{"name": "default", "key": "sk-0123456"}]})", "reserved"},
      {R"({"tenants": [{"name": "user", "key": "sk-0123456"}]})", "reserved"},
      {R"({"tenants": [{"name": "a"}]})", "tenants[0] (a): \"key\""},
      {R"({"tenants": [{"name": "a", "key": "short"}]})", "\"key\" must be 8 to 512 bytes"},
      {R"({"tenants": [{"name": "a", "key": "has space 1"}]})", "printable ASCII"},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456", "weight": 0}]})", "\"weight\""},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456", "weight": "2"}]})", "number"},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456", "max_concurrent_requests": -1}]})",
       "\"max_concurrent_requests\" must be in [0"},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456", "tokens_per_minute": 1.5}]})",
       "\"tokens_per_minute\" must be an integer"},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456", "max_priority": 3000000000}]})",
       "\"max_priority\" must be in"},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456", "wieght": 2}]})",
       "unknown field \"wieght\""},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456"}, {"name": "a", "key": "sk-6543210"}]})",
       "tenants[1]: the name \"a\" is used twice"},
      {R"({"tenants": [{"name": "a", "key": "sk-0123456"}, {"name": "b", "key": "sk-0123456"}]})",
       "tenants[1] (b): its key is also another tenant's key"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<KeyedTenant>> t = ParseApiKeys(c.json);
    ASSERT_FALSE(t.ok()) << c.json;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(t.status().message(), HasSubstr(c.message)) << c.json;
    // A key never appears in an error message.
    EXPECT_THAT(t.status().message(), Not(HasSubstr("sk-0123456"))) << c.json;
  }
}

TEST(TenantConfigTest, LoadsAFileAndNamesThePathInErrors) {
  const std::string path = ::testing::TempDir() + "/tenant_config_test_keys.json";
  {
    std::ofstream out(path);
    out << R"({"tenants": [{"name": "a", "key": "sk-0123456"}]})";
  }
  absl::StatusOr<std::vector<KeyedTenant>> t = LoadApiKeysFile(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->at(0).policy.name, "a");
  {
    std::ofstream out(path);
    out << R"({"tenants": 3})";
  }
  t = LoadApiKeysFile(path);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("--api-keys " + path + ": "));
  std::remove(path.c_str());
  t = LoadApiKeysFile(path);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr(path));
}

}  // namespace
}  // namespace tessera::router
