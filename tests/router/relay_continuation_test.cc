// Mid-stream failover in the router (router/continuation.h): the pure pieces
// (the decision, the continuation request, its placement hashes, the
// router's seed), then, through a router over fake workers, a stream whose
// worker fails after some tokens goes on on another worker as a continuation
// of exactly the delivered tokens, with the same seed and parameters; the
// client's stream has no seam (n > 1: each unfinished choice goes on, the
// finished ones are not run again); --max-failovers and a client-set
// continuation end as documented.
#include <set>

#include "absl/random/random.h"
#include "common/block_hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/continuation.h"
#include "tests/common/http_test_util.h"
#include "tests/router/service_test_util.h"

namespace tessera::router::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

FailoverFacts Facts(int64_t delivered, int failovers_done = 0) {
  FailoverFacts f;
  f.delivered_tokens = delivered;
  f.longest_unfinished = delivered;
  f.failovers_done = failovers_done;
  f.max_failovers = 2;
  f.max_tokens = 10;
  return f;
}

TEST(DecideFailover, ContinuesUntilMaxFailovers) {
  EXPECT_EQ(DecideFailover(Facts(3, 0)), FailoverDecision::kContinue);
  EXPECT_EQ(DecideFailover(Facts(3, 1)), FailoverDecision::kContinue);
  EXPECT_EQ(DecideFailover(Facts(3, 2)), FailoverDecision::kNoFailoversLeft);
  FailoverFacts none = Facts(3);
  none.max_failovers = 0;
  EXPECT_EQ(DecideFailover(none), FailoverDecision::kNoFailoversLeft);
  EXPECT_THAT(FailoverRefusal(FailoverDecision::kNoFailoversLeft, none),
              HasSubstr("--max-failovers (0) reached"));
}

TEST(DecideFailover, ACompleteStreamIsCompleteAndNothingLeftIsNotContinued) {
  FailoverFacts done = Facts(10);
  done.finals_delivered = 1;
  EXPECT_EQ(DecideFailover(done), FailoverDecision::kComplete);
  EXPECT_EQ(DecideFailover(Facts(10)), FailoverDecision::kNothingLeft);
  EXPECT_EQ(DecideFailover(Facts(9)), FailoverDecision::kContinue);
}

TEST(DecideFailover, MultipleChoicesContinueWhileAnUnfinishedChoiceHasTokensLeft) {
  // Choice 0 finished with all 10 tokens, choice 1 has 3 of them, choice 2 none.
  std::vector<DeliveredChoice> delivered(3);
  delivered[0].token_ids.assign(10, 7);
  delivered[0].finished = true;
  delivered[1].token_ids.assign(3, 7);
  FailoverFacts f = FailoverFacts::Of(delivered, /*failovers_done=*/1, /*max_failovers=*/2,
                                      /*max_tokens=*/10);
  EXPECT_EQ(f.choices, 3);
  EXPECT_EQ(f.finals_delivered, 1);
  EXPECT_EQ(f.delivered_tokens, 13);
  EXPECT_EQ(f.longest_unfinished, 3);  // the finished choice's 10 do not count
  EXPECT_EQ(DecideFailover(f), FailoverDecision::kContinue);
  f.failovers_done = 2;
  EXPECT_EQ(DecideFailover(f), FailoverDecision::kNoFailoversLeft);
  // An unfinished choice with all max_tokens delivered: nothing to continue.
  delivered[2].token_ids.assign(10, 7);
  EXPECT_EQ(DecideFailover(FailoverFacts::Of(delivered, 0, 2, 10)), FailoverDecision::kNothingLeft);
  delivered[1].finished = delivered[2].finished = true;
  EXPECT_EQ(DecideFailover(FailoverFacts::Of(delivered, 2, 2, 10)), FailoverDecision::kComplete);
}

TEST(ContinuationRequest, WithSeveralChoicesCarriesEachUnfinishedOneWithItsTokens) {
  v1::GenerateRequest original = IdsRequest({1, 2, 3, 4, 5}, 12);
  original.mutable_sampling()->set_n(3);
  original.mutable_sampling()->set_seed(77);
  std::vector<DeliveredChoice> delivered(3);
  delivered[0].token_ids = {9, 8};
  delivered[1].token_ids = {6, 5, 4};
  delivered[1].finished = true;  // the client has it whole: not run again
  const v1::GenerateRequest next = ContinuationRequest(original, delivered);
  EXPECT_TRUE(next.continuation().output_token_ids().empty());
  ASSERT_EQ(next.continuation().choices_size(), 2);
  EXPECT_EQ(next.continuation().choices(0).index(), 0);
  EXPECT_THAT(next.continuation().choices(0).output_token_ids(), ElementsAre(9, 8));
  EXPECT_EQ(next.continuation().choices(1).index(), 2);
  EXPECT_TRUE(next.continuation().choices(1).output_token_ids().empty());
  EXPECT_EQ(next.sampling().seed(), 77u);
  EXPECT_EQ(next.sampling().n(), 3);
  // Placement follows the first unfinished choice: prompt + {9, 8}.
  EXPECT_EQ(ContinuationBlockHashes(original, delivered, 7),
            HashFullBlocks(std::vector<int32_t>{1, 2, 3, 4, 5, 9, 8}, 7));
}

TEST(MakeResumable, GivesARandomSeedKeepsTheClientsAndRefusesAContinuation) {
  absl::BitGen bitgen;
  v1::GenerateRequest a = IdsRequest({1, 2});
  v1::GenerateRequest b = IdsRequest({1, 2});
  ASSERT_TRUE(MakeResumable(a, bitgen).ok());
  ASSERT_TRUE(MakeResumable(b, bitgen).ok());
  ASSERT_TRUE(a.sampling().has_seed());
  ASSERT_TRUE(b.sampling().has_seed());
  EXPECT_NE(a.sampling().seed(), b.sampling().seed());
  v1::GenerateRequest own = IdsRequest({1, 2});
  own.mutable_sampling()->set_seed(5);
  ASSERT_TRUE(MakeResumable(own, bitgen).ok());
  EXPECT_EQ(own.sampling().seed(), 5u);
  v1::GenerateRequest forged = IdsRequest({1, 2});
  forged.mutable_continuation()->add_output_token_ids(3);
  const absl::Status s = MakeResumable(forged, bitgen);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("continuation"));
}

class RelayContinuationTest : public RouterServiceTest {
 protected:
  // Sends requests until one starts on `worker` (round robin alternates).
  Stream GenerateStartingOn(const std::string& worker, const v1::GenerateRequest& request) {
    for (int i = 0; i < 6; ++i) {
      Stream s = Generate(request);
      if (!s.messages.empty() && s.messages.front().worker_id() == worker) return s;
    }
    ADD_FAILURE() << "no request started on " << worker;
    return {};
  }
  static std::vector<int32_t> Range(int32_t from, int n) {
    std::vector<int32_t> v;
    for (int i = 0; i < n; ++i) v.push_back(from + i);
    return v;
  }
};

TEST_F(RelayContinuationTest, AStreamWhoseWorkerFailsGoesOnElsewhereWithoutASeam) {
  StartWorkers(2);
  GenerateScript fails;
  fails.tokens = 6;
  fails.fail_after_messages = 3;
  workers_[0]->SetGenerateScript(fails);
  GenerateScript healthy;
  healthy.tokens = 6;
  workers_[1]->SetGenerateScript(healthy);
  StartRouter();

  v1::GenerateRequest request = IdsRequest({1, 2, 3, 4, 5}, 6);
  request.set_return_prompt_token_ids(true);
  const Stream s = GenerateStartingOn("w0", request);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_THAT(s.tokens(), ElementsAreArray(Range(100, 6)));
  ASSERT_EQ(s.messages.size(), 7u);  // 6 tokens + the final message
  for (size_t i = 0; i < s.messages.size(); ++i) {
    EXPECT_EQ(s.messages[i].worker_id(), i < 3 ? "w0" : "w1") << i;
  }
  EXPECT_EQ(s.messages.back().finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(s.messages.back().usage().completion_tokens(), 6);

  // w1 got the continuation: the same request, seed included, and the 3
  // delivered tokens.
  const std::vector<v1::GenerateRequest> first = workers_[0]->generate_requests();
  const std::optional<v1::GenerateRequest> continued = workers_[1]->last_request();
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(continued.has_value());
  const v1::GenerateRequest& original = first.back();
  EXPECT_FALSE(original.has_continuation());
  ASSERT_TRUE(original.sampling().has_seed()) << "the router gives every request a seed";
  EXPECT_THAT(continued->continuation().output_token_ids(), ElementsAre(100, 101, 102));
  EXPECT_EQ(continued->sampling().seed(), original.sampling().seed());
  EXPECT_EQ(continued->request_id(), original.request_id());
  EXPECT_EQ(continued->sampling().max_tokens(), 6);
  EXPECT_FALSE(continued->return_prompt_token_ids());
  EXPECT_EQ(router_->counters().failed.load(), 0);
  EXPECT_EQ(router_->counters().continued.load(), 1);
}

// The HTTP API goes through the same relay: a non-streamed completion whose
// worker fails after some tokens completes (it was a 503).
TEST_F(RelayContinuationTest, ANonStreamedHttpRequestCompletesToo) {
  StartWorkers(2);
  GenerateScript fails;
  fails.tokens = 6;
  fails.fail_after_messages = 3;
  workers_[0]->SetGenerateScript(fails);
  GenerateScript healthy;
  healthy.tokens = 6;
  workers_[1]->SetGenerateScript(healthy);
  StartRouter();
  ASSERT_GT(router_->http_port(), 0);
  const std::string body = R"({"model":"fake","prompt":[1,2,3,4],"max_tokens":6})";
  for (int i = 0; i < 4; ++i) {  // round robin: half of them start on w0
    http::testing::RawClient client(router_->http_port(), absl::Seconds(10));
    ASSERT_TRUE(client.Send(absl::StrCat(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: ",
        body.size(), "\r\n\r\n", body)));
    const std::optional<http::testing::RawResponse> r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
    const nlohmann::json j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["usage"]["completion_tokens"], 6) << r->body;
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length") << r->body;
  }
  int continued = 0;
  for (const v1::GenerateRequest& r : workers_[1]->generate_requests()) {
    if (r.has_continuation()) {
      ++continued;
      EXPECT_THAT(r.continuation().output_token_ids(), ElementsAre(100, 101, 102));
    }
  }
  EXPECT_GE(continued, 1);
  EXPECT_EQ(continued, workers_[0]->generate_calls());
}

TEST_F(RelayContinuationTest, FailoversAreBoundedByMaxFailovers) {
  StartWorkers(4);
  GenerateScript fails;
  fails.tokens = 10;
  fails.fail_after_messages = 2;
  for (auto& w : workers_) w->SetGenerateScript(fails);
  RouterServerOptions o = FastOptions();
  o.relay.max_failovers = 2;
  StartRouter(o);

  const Stream s = Generate(IdsRequest({1, 2, 3}, 10));
  // Three workers each delivered two more tokens; the third failure ends it.
  EXPECT_THAT(s.tokens(), ElementsAreArray(Range(100, 6)));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(), HasSubstr("failed after 6 tokens were delivered"));
  EXPECT_THAT(s.status.error_message(), HasSubstr("--max-failovers (2) reached"));
  std::set<std::string> served;
  for (const auto& m : s.messages) served.insert(m.worker_id());
  EXPECT_EQ(served.size(), 3u);
  EXPECT_EQ(TotalGenerateCalls(), 3);
  EXPECT_EQ(router_->counters().failed.load(), 1);
  EXPECT_EQ(router_->counters().continued.load(), 2);
}

TEST_F(RelayContinuationTest, WithoutFailoversAFailureAfterTokensEndsTheStreamAsBefore) {
  StartWorkers(2);
  GenerateScript fails;
  fails.tokens = 4;
  fails.fail_after_messages = 2;
  for (auto& w : workers_) w->SetGenerateScript(fails);
  RouterServerOptions o = FastOptions();
  o.relay.max_failovers = 0;
  StartRouter(o);
  const Stream s = Generate(IdsRequest({1, 2, 3}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(), HasSubstr("failed after 2 tokens were delivered"));
  EXPECT_THAT(s.tokens(), ElementsAre(100, 101));
  EXPECT_EQ(TotalGenerateCalls(), 1);
  EXPECT_EQ(router_->counters().continued.load(), 0);
}

// n = 2 over the fake workers' script (fake_worker.h): choice 0 sends 100..103,
// choice 1 200..202, interleaved, each final right after its last token:
//   100 200 101 201 102 202 [final 1] 103 [final 0]
// The first worker fails after `fail_after` messages; the client's stream
// still has every token of each choice once, in order, and both finals.
TEST_F(RelayContinuationTest, ParallelSamplingContinuesEachUnfinishedChoice) {
  struct Case {
    int fail_after;
    std::vector<int32_t> continued_indices;  // the continuation's choices
    std::vector<int> continued_tokens;       // their delivered token counts
  };
  const std::vector<Case> cases = {
      {3, {0, 1}, {2, 1}},  // after 100 200 101
      {6, {0, 1}, {3, 3}},  // choice 1 has all its tokens but not its final
      {7, {0}, {3}},        // choice 1 finished: only choice 0 goes on
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fail_after);
    FakeWorkerOptions parallel;
    parallel.max_n = 4;
    StartWorkers(2, parallel);
    GenerateScript fails;
    fails.fail_after_messages = c.fail_after;
    workers_[0]->SetGenerateScript(fails);
    workers_[1]->SetGenerateScript(GenerateScript{});
    StartRouter();
    v1::GenerateRequest request = IdsRequest({1, 2, 3});
    request.mutable_sampling()->set_n(2);
    const Stream s = GenerateStartingOn("w0", request);
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    std::vector<std::vector<int32_t>> tokens(2);
    int finals = 0;
    int completion = 0;
    for (const v1::GenerateResponse& m : s.messages) {
      ASSERT_GE(m.index(), 0);
      ASSERT_LT(m.index(), 2);
      tokens[m.index()].insert(tokens[m.index()].end(), m.token_ids().begin(), m.token_ids().end());
      if (m.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
        ++finals;
        completion += m.usage().completion_tokens();
      }
    }
    EXPECT_THAT(tokens[0], ElementsAre(100, 101, 102, 103));
    EXPECT_THAT(tokens[1], ElementsAre(200, 201, 202));
    EXPECT_EQ(finals, 2);
    EXPECT_EQ(completion, 7);
    const std::optional<v1::GenerateRequest> continued = workers_[1]->last_request();
    ASSERT_TRUE(continued.has_value());
    ASSERT_EQ(continued->continuation().choices_size(),
              static_cast<int>(c.continued_indices.size()));
    for (int i = 0; i < continued->continuation().choices_size(); ++i) {
      const v1::ContinuedChoice& choice = continued->continuation().choices(i);
      EXPECT_EQ(choice.index(), c.continued_indices[i]);
      EXPECT_EQ(choice.output_token_ids_size(), c.continued_tokens[i]);
    }
    EXPECT_EQ(router_->counters().continued.load(), 1);
    EXPECT_EQ(router_->counters().failed.load(), 0);
    TearDown();  // the next case starts its own workers and router
  }
}

TEST_F(RelayContinuationTest, WithNoOtherWorkerTheErrorSaysSo) {
  StartWorkers(1);
  GenerateScript fails;
  fails.fail_after_messages = 2;
  workers_[0]->SetGenerateScript(fails);
  StartRouter();
  const Stream s = Generate(IdsRequest({1, 2, 3}));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.status.error_message(),
              HasSubstr("worker w0 failed after 2 tokens were delivered"));
  EXPECT_THAT(s.status.error_message(), HasSubstr("no other worker"));
  EXPECT_THAT(s.tokens(), ElementsAre(100, 101));
}

TEST_F(RelayContinuationTest, AClientMayNotSendAContinuation) {
  StartWorkers(1);
  StartRouter();
  v1::GenerateRequest forged = IdsRequest({1, 2, 3});
  forged.mutable_continuation()->add_output_token_ids(7);
  const Stream s = Generate(forged);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("continuation"));
  EXPECT_EQ(TotalGenerateCalls(), 0);
}

}  // namespace
}  // namespace tessera::router::testing
