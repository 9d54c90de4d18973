#include "common/config.h"

#include "gtest/gtest.h"

namespace tessera {
namespace {

TEST(ConfigTest, DefaultsAreValidOnceSized) {
  CacheConfig cache;
  cache.num_blocks = 100;
  EXPECT_TRUE(cache.Validate().ok());
  EXPECT_TRUE(SchedulerConfig{}.Validate().ok());
}

TEST(ConfigTest, ErrorsNameTheFlagAndTheLimit) {
  CacheConfig cache;
  cache.num_blocks = 0;
  auto s = cache.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--num-kv-blocks"), std::string::npos) << s;

  cache.num_blocks = 10;
  cache.block_size = 0;
  s = cache.Validate();
  EXPECT_NE(s.message().find("--block-size"), std::string::npos) << s;

  SchedulerConfig sched;
  sched.enable_chunked_prefill = false;
  sched.max_model_len = 4096;
  sched.max_num_batched_tokens = 2048;
  s = sched.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--max-num-batched-tokens"), std::string::npos) << s;

  sched = SchedulerConfig{};
  sched.max_num_seqs = 0;
  EXPECT_NE(sched.Validate().message().find("--max-num-seqs"), std::string::npos);
}

TEST(ConfigTest, ParsesPolicies) {
  EXPECT_EQ(*ParseSchedulingPolicy("fcfs"), SchedulingPolicy::kFcfs);
  EXPECT_EQ(*ParseSchedulingPolicy("priority"), SchedulingPolicy::kPriority);
  EXPECT_FALSE(ParseSchedulingPolicy("lifo").ok());
}

}  // namespace
}  // namespace tessera
