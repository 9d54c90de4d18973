// Admission validation (every bad input -> code + message naming the field
// and the limit), proto -> SamplingParams defaults, and stop-string matching.
#include "worker/server/proto_convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/engine/stop_string_matcher.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

api::RequestLimits Limits() {
  api::RequestLimits l;
  l.model_name = "dummy-tiny";
  l.vocab_size = 512;
  l.max_model_len = 64;
  l.max_logprobs = 20;
  l.max_stop = 4;
  return l;
}

v1::GenerateRequest Ids(std::initializer_list<int32_t> ids) {
  v1::GenerateRequest r;
  r.set_request_id("r");
  for (int32_t id : ids) r.mutable_token_ids()->add_ids(id);
  return r;
}

class ProtoConvertTest : public ::testing::Test {
 protected:
  absl::StatusOr<EngineRequest> Convert(const v1::GenerateRequest& r) {
    return EngineRequestFromProto(r, Limits(), *text_);
  }
  void ExpectBad(const v1::GenerateRequest& r, absl::StatusCode code,
                 std::vector<std::string> parts) {
    auto got = Convert(r);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), code) << got.status();
    for (const std::string& p : parts) EXPECT_THAT(got.status().message(), HasSubstr(p));
  }
  std::shared_ptr<const ModelText> text_ = *ModelText::Load({}, std::nullopt, 512);
};

TEST_F(ProtoConvertTest, DefaultsForUnsetFields) {
  auto r = Convert(Ids({1, 5, 6}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "r");
  EXPECT_EQ(r->prompt_token_ids, (std::vector<int32_t>{1, 5, 6}));
  EXPECT_EQ(r->params.max_tokens, 16);
  EXPECT_EQ(r->params.temperature, 1.0f);
  EXPECT_EQ(r->params.top_p, 1.0f);
  EXPECT_EQ(r->params.top_k, -1);
  EXPECT_EQ(r->params.min_p, 0.0f);
  EXPECT_FALSE(r->params.seed.has_value());
  EXPECT_EQ(r->params.logprobs, 0);
}

TEST_F(ProtoConvertTest, ExplicitValuesAreKept) {
  v1::GenerateRequest req = Ids({1, 2});
  v1::SamplingParams* s = req.mutable_sampling();
  s->set_max_tokens(3);
  s->set_temperature(0.0f);
  s->set_top_p(0.5f);
  s->set_top_k(7);
  s->set_min_p(0.1f);
  s->set_seed(42);
  s->add_stop("x");
  s->add_stop_token_ids(9);
  s->set_ignore_eos(true);
  s->set_logprobs(2);
  req.set_priority(3);
  auto r = Convert(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->params.max_tokens, 3);
  EXPECT_TRUE(r->params.greedy());
  EXPECT_EQ(r->params.top_p, 0.5f);
  EXPECT_EQ(r->params.top_k, 7);
  EXPECT_EQ(*r->params.seed, 42u);
  EXPECT_EQ(r->params.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r->params.stop_token_ids, std::vector<int32_t>{9});
  EXPECT_TRUE(r->params.ignore_eos);
  EXPECT_EQ(r->params.logprobs, 2);
  EXPECT_EQ(r->priority, 3);
}

TEST_F(ProtoConvertTest, TextIsTokenizedWithBos) {
  v1::GenerateRequest req;
  req.set_text("hi");
  auto r = Convert(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt_token_ids, (std::vector<int32_t>{1, 'h' + 3, 'i' + 3}));
}

TEST_F(ProtoConvertTest, RejectsBadRequests) {
  using C = absl::StatusCode;
  ExpectBad(v1::GenerateRequest(), C::kInvalidArgument, {"prompt is empty"});
  ExpectBad(Ids({}), C::kInvalidArgument, {"prompt is empty"});
  {
    v1::GenerateRequest r;
    r.set_text("");
    ExpectBad(r, C::kInvalidArgument, {"text is empty"});
  }
  ExpectBad(Ids({1, 512}), C::kInvalidArgument, {"token_ids[1]", "512", "[0, 512)"});
  ExpectBad(Ids({-1}), C::kInvalidArgument, {"token_ids[0]", "-1"});
  {
    v1::GenerateRequest r;
    for (int i = 0; i < 65; ++i) r.mutable_token_ids()->add_ids(5);
    ExpectBad(r, C::kInvalidArgument, {"65 tokens", "max_model_len 64"});
  }
  {
    v1::GenerateRequest r = Ids({1, 2, 3, 4});
    r.mutable_sampling()->set_max_tokens(61);
    ExpectBad(r, C::kInvalidArgument, {"max_tokens (61)", "65", "max_model_len 64"});
  }
  auto bad_sampling = [&](auto set, std::vector<std::string> parts) {
    v1::GenerateRequest r = Ids({1, 2});
    set(r.mutable_sampling());
    ExpectBad(r, C::kInvalidArgument, parts);
  };
  bad_sampling([](v1::SamplingParams* s) { s->set_max_tokens(0); }, {"max_tokens", "at least 1"});
  bad_sampling([](v1::SamplingParams* s) { s->set_max_tokens(-3); }, {"max_tokens", "-3"});
  bad_sampling([](v1::SamplingParams* s) { s->set_temperature(-0.5f); }, {"temperature"});
  bad_sampling([](v1::SamplingParams* s) { s->set_top_p(0.0f); }, {"top_p", "(0, 1]"});
  bad_sampling([](v1::SamplingParams* s) { s->set_top_p(1.5f); }, {"top_p", "(0, 1]"});
  bad_sampling([](v1::SamplingParams* s) { s->set_top_k(-2); }, {"top_k", "-2"});
  bad_sampling([](v1::SamplingParams* s) { s->set_min_p(-0.1f); }, {"min_p", "[0, 1]"});
  bad_sampling([](v1::SamplingParams* s) { s->set_min_p(1.1f); }, {"min_p", "[0, 1]"});
  bad_sampling([](v1::SamplingParams* s) { s->set_logprobs(21); }, {"logprobs", "20"});
  bad_sampling(
      [](v1::SamplingParams* s) {
        for (int i = 0; i < 5; ++i) s->add_stop("s");
      },
      {"too many stop", "limit 4"});
  bad_sampling([](v1::SamplingParams* s) { s->add_stop(""); }, {"stop[0]", "empty"});
  bad_sampling([](v1::SamplingParams* s) { s->add_stop_token_ids(600); },
               {"stop_token_ids[0]", "600", "[0, 512)"});
}

TEST_F(ProtoConvertTest, ModelName) {
  v1::GenerateRequest r = Ids({1});
  r.set_model("dummy-tiny");
  EXPECT_TRUE(Convert(r).ok());
  r.set_model("gpt-5");
  ExpectBad(r, absl::StatusCode::kNotFound, {"gpt-5", "dummy-tiny"});
}

TEST(FinishReasonTest, MapsEveryReason) {
  EXPECT_EQ(FinishReasonToProto(FinishReason::kNone), v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kLength), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kStop), v1::FINISH_REASON_STOP);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kEos), v1::FINISH_REASON_EOS);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kAbort), v1::FINISH_REASON_ABORT);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kError), v1::FINISH_REASON_ERROR);
}

TEST(StopStringMatcherTest, NoStopsReleasesEverything) {
  StopStringMatcher m({});
  EXPECT_EQ(m.Append("hello"), "hello");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcherTest, StopsWithinOneChunk) {
  StopStringMatcher m({"END"});
  EXPECT_EQ(m.Append("abcENDxyz"), "abc");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "END");
  EXPECT_EQ(m.Append("more"), "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopStringMatcherTest, StopAcrossChunksHoldsBackAPossiblePrefix) {
  StopStringMatcher m({"STOP"});
  std::string out;
  out += m.Append("ab");  // "ab" may not be released: "b" can't start STOP but holdback is 3
  out += m.Append("cS");
  out += m.Append("T");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(out.find('S'), std::string::npos) << "released text that could start a stop: " << out;
  out += m.Append("OPzz");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(out, "abc");
}

TEST(StopStringMatcherTest, FalseAlarmIsReleasedByFlush) {
  StopStringMatcher m({"STOP"});
  std::string out = m.Append("xST");
  out += m.Append("A");
  out += m.Flush();
  EXPECT_EQ(out, "xSTA");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcherTest, EarliestOfSeveralStops) {
  StopStringMatcher m({"cd", "b"});
  EXPECT_EQ(m.Append("abcd"), "a");
  EXPECT_EQ(m.matched(), "b");
}

TEST(StopStringMatcherTest, NeverSplitsAUtf8Character) {
  StopStringMatcher m({"zz"});
  // "é" is 2 bytes; the holdback of 1 byte must not cut it.
  std::string out = m.Append("a\xC3\xA9");
  EXPECT_EQ(out, "a");
  out += m.Append("b");
  EXPECT_EQ(out, "a\xC3\xA9");
  out += m.Flush();
  EXPECT_EQ(out,
            "a\xC3\xA9"
            "b");
}

}  // namespace
}  // namespace tessera
