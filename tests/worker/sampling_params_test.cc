#include "common/api/sampling_params.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams With(const std::function<void(SamplingParams&)>& edit) {
  SamplingParams p;
  edit(p);
  return p;
}

void ExpectInvalid(const SamplingParams& p, const std::string& field, const std::string& detail) {
  absl::Status s = p.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr(field), HasSubstr(detail)));
}

TEST(SamplingParamsTest, DefaultsAreValid) {
  SamplingParams p;
  EXPECT_TRUE(p.Validate().ok());
  EXPECT_FALSE(p.greedy());
}

TEST(SamplingParamsTest, BoundaryValuesAreValid) {
  for (const SamplingParams& p : {
           With([](SamplingParams& p) { p.max_tokens = 1; }),
           With([](SamplingParams& p) { p.temperature = 0.0f; }),
           With([](SamplingParams& p) { p.temperature = 100.0f; }),
           With([](SamplingParams& p) { p.top_p = 1e-6f; }),
           With([](SamplingParams& p) { p.top_k = 0; }),
           With([](SamplingParams& p) { p.top_k = 1; }),
           With([](SamplingParams& p) { p.min_p = 1.0f; }),
           With([](SamplingParams& p) { p.repetition_penalty = 0.01f; }),
           With([](SamplingParams& p) { p.presence_penalty = -2.0f; }),
           With([](SamplingParams& p) { p.frequency_penalty = 2.0f; }),
           With([](SamplingParams& p) { p.logprobs = 20; }),
           With([](SamplingParams& p) {
             p.stop = {"a", "b"};
             p.stop_token_ids = std::vector<int32_t>(14, 2);
           }),
           With([](SamplingParams& p) { p.seed = 0; }),
       }) {
    EXPECT_TRUE(p.Validate().ok()) << p.Validate();
  }
  EXPECT_TRUE(With([](SamplingParams& p) { p.temperature = 0.0f; }).greedy());
}

TEST(SamplingParamsTest, MaxTokens) {
  ExpectInvalid(With([](SamplingParams& p) { p.max_tokens = 0; }), "max_tokens",
                "at least 1, got 0");
  ExpectInvalid(With([](SamplingParams& p) { p.max_tokens = -5; }), "max_tokens", "got -5");
}

TEST(SamplingParamsTest, Temperature) {
  ExpectInvalid(With([](SamplingParams& p) { p.temperature = -1.0f; }), "temperature",
                "non-negative, got -1");
  ExpectInvalid(With([](SamplingParams& p) { p.temperature = kNaN; }), "temperature", "nan");
  ExpectInvalid(With([](SamplingParams& p) { p.temperature = kInf; }), "temperature", "finite");
}

TEST(SamplingParamsTest, TopP) {
  ExpectInvalid(With([](SamplingParams& p) { p.top_p = 0.0f; }), "top_p", "(0, 1], got 0");
  ExpectInvalid(With([](SamplingParams& p) { p.top_p = 1.5f; }), "top_p", "got 1.5");
  ExpectInvalid(With([](SamplingParams& p) { p.top_p = kNaN; }), "top_p", "nan");
}

TEST(SamplingParamsTest, TopK) {
  ExpectInvalid(With([](SamplingParams& p) { p.top_k = -2; }), "top_k",
                "-1 (disabled) or positive, got -2");
}

TEST(SamplingParamsTest, MinP) {
  ExpectInvalid(With([](SamplingParams& p) { p.min_p = 1.5f; }), "min_p", "[0, 1], got 1.5");
  ExpectInvalid(With([](SamplingParams& p) { p.min_p = -0.1f; }), "min_p", "got -0.1");
  ExpectInvalid(With([](SamplingParams& p) { p.min_p = kNaN; }), "min_p", "nan");
}

TEST(SamplingParamsTest, RepetitionPenalty) {
  ExpectInvalid(With([](SamplingParams& p) { p.repetition_penalty = 0.0f; }), "repetition_penalty",
                "positive");
  ExpectInvalid(With([](SamplingParams& p) { p.repetition_penalty = -1.0f; }), "repetition_penalty",
                "got -1");
  ExpectInvalid(With([](SamplingParams& p) { p.repetition_penalty = kNaN; }), "repetition_penalty",
                "nan");
  ExpectInvalid(With([](SamplingParams& p) { p.repetition_penalty = kInf; }), "repetition_penalty",
                "inf");
}

TEST(SamplingParamsTest, PresenceAndFrequencyPenalties) {
  ExpectInvalid(With([](SamplingParams& p) { p.presence_penalty = 2.5f; }), "presence_penalty",
                "[-2, 2], got 2.5");
  ExpectInvalid(With([](SamplingParams& p) { p.presence_penalty = kNaN; }), "presence_penalty",
                "nan");
  ExpectInvalid(With([](SamplingParams& p) { p.frequency_penalty = -3.0f; }), "frequency_penalty",
                "[-2, 2], got -3");
  ExpectInvalid(With([](SamplingParams& p) { p.frequency_penalty = kNaN; }), "frequency_penalty",
                "nan");
}

TEST(SamplingParamsTest, Logprobs) {
  ExpectInvalid(With([](SamplingParams& p) { p.logprobs = -1; }), "logprobs", "[0, 20], got -1");
  ExpectInvalid(With([](SamplingParams& p) { p.logprobs = 21; }), "logprobs", "[0, 20], got 21");
  SamplingParams p = With([](SamplingParams& p) { p.logprobs = 5; });
  absl::Status s = p.Validate(/*max_logprobs=*/4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("[0, 4], got 5"));
  EXPECT_TRUE(p.Validate(/*max_logprobs=*/5).ok());
}

TEST(SamplingParamsTest, StopSequences) {
  SamplingParams p = With([](SamplingParams& p) {
    p.stop = {"x", "y", "z"};
    p.stop_token_ids = {1, 2};
  });
  EXPECT_TRUE(p.Validate(20, /*max_stop=*/5).ok());
  absl::Status s = p.Validate(20, /*max_stop=*/4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("too many stop sequences: 5 (limit 4"));

  ExpectInvalid(With([](SamplingParams& p) { p.stop = {"ok", ""}; }), "stop[1]", "empty");
  ExpectInvalid(With([](SamplingParams& p) {
                  p.stop_token_ids = {3, -1};
                }),
                "stop_token_ids[1]", "got -1");
}

}  // namespace
}  // namespace tessera
