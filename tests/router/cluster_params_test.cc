// The cluster's parameters without gRPC: range checks on what a worker
// reports, the messages that name the field, the operator's pin, and the
// vote (majority of reachable workers, not whoever answered first).
#include "router/cluster_params.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::router {
namespace {

using ::testing::HasSubstr;

ClusterParams Params(int32_t block_size = 16, const std::string& model = "m",
                     int32_t vocab_size = 512, int32_t max_model_len = 2048,
                     const std::string& hash = "") {
  ClusterParams p;
  p.block_size = block_size;
  p.model.set_id(model);
  p.model.set_vocab_size(vocab_size);
  p.model.set_max_model_len(max_model_len);
  p.model.set_tokenizer_hash(hash);
  return p;
}

TEST(ClusterParamsTest, AbsurdValuesAreRefusedNamingTheFieldAndTheRange) {
  EXPECT_TRUE(ValidateReportedParams(Params()).ok());
  struct Case {
    ClusterParams params;
    std::string message;
  };
  ClusterParams logprobs = Params();
  logprobs.model.set_max_logprobs(-1);
  ClusterParams n = Params();
  n.model.set_max_n(0);
  ClusterParams stop = Params();
  stop.model.set_max_stop(1 << 30);
  const Case cases[] = {
      {Params(2147483647), "block_size 2147483647 is out of range [1, 1024]"},
      {Params(0), "block_size 0 is out of range [1, 1024]"},
      {Params(16, "m", 0), "vocab_size 0 is out of range [1, 16777216]"},
      {Params(16, "m", -5), "vocab_size -5 is out of range [1, 16777216]"},
      {Params(16, "m", 512, 1), "max_model_len 1 is out of range [2, 16777216]"},
      {Params(16, "m", 512, 2147483647), "max_model_len 2147483647 is out of range"},
      {Params(16, ""), "model id must be 1..256 bytes, got 0 bytes"},
      {Params(16, std::string(1 << 20, 'x')), "model id must be 1..256 bytes, got 1048576 bytes"},
      {Params(16, "m", 512, 2048, "NOT-HEX"), "tokenizer_hash must be empty or up to 64"},
      {Params(16, "m", 512, 2048, std::string(65, 'a')), "tokenizer_hash must be empty"},
      {logprobs, "max_logprobs -1 is out of range [0, 1048576]"},
      {n, "max_n 0 is out of range [1, 1048576]"},
      {stop, "max_stop 1073741824 is out of range [0, 4096]"},
  };
  for (const Case& c : cases) {
    const absl::Status s = ValidateReportedParams(c.params);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_LT(s.message().size(), 200u);  // never echoes an unbounded value
  }
}

TEST(ClusterParamsTest, DisagreementNamesTheField) {
  const ClusterParams cluster = Params(16, "m", 512, 2048, "ab12");
  EXPECT_EQ(Disagreement(cluster, {}, cluster), "");
  EXPECT_EQ(Disagreement(Params(32, "m", 512, 2048, "ab12"), {}, cluster),
            "block_size: the worker reports 32, the cluster's is 16");
  EXPECT_THAT(Disagreement(Params(16, "other", 512, 2048, "ab12"), {}, cluster),
              HasSubstr("model id: the worker serves 'other', the cluster serves 'm'"));
  EXPECT_EQ(Disagreement(Params(16, "m", 1024, 2048, "ab12"), {}, cluster),
            "vocab_size: the worker reports 1024, the cluster's is 512");
  EXPECT_EQ(Disagreement(Params(16, "m", 512, 4096, "ab12"), {}, cluster),
            "max_model_len: the worker reports 4096, the cluster's is 2048");
  EXPECT_THAT(Disagreement(Params(16, "m", 512, 2048, "cd34"), {}, cluster),
              HasSubstr("tokenizer_hash: the worker's tokenizer files or chat template"));
  ClusterParams limits = cluster;
  limits.model.set_max_logprobs(5);
  EXPECT_EQ(Disagreement(limits, {}, cluster),
            "max_logprobs: the worker reports 5, the cluster's is 20");
  // Unset limits compare as their defaults.
  limits.model.set_max_logprobs(20);
  EXPECT_EQ(Disagreement(limits, {}, cluster), "");
  EXPECT_TRUE(SameParams(limits, cluster));
  // Without adopted parameters only the pin can disagree.
  EXPECT_EQ(Disagreement(Params(32), {}, std::nullopt), "");
  ClusterParamsPin pin;
  pin.block_size = 16;
  EXPECT_EQ(Disagreement(Params(32), pin, std::nullopt),
            "block_size: the worker reports 32, --block-size says 16");
}

TEST(ClusterParamsTest, PinIsValidatedNamingTheFlag) {
  ClusterParamsPin pin;
  EXPECT_TRUE(pin.empty());
  EXPECT_TRUE(pin.Validate().ok());
  pin.block_size = 2048;
  EXPECT_THAT(pin.Validate().message(), HasSubstr("--block-size 2048 is out of range [1, 1024]"));
  pin.block_size = 16;
  pin.vocab_size = 0;
  EXPECT_THAT(pin.Validate().message(), HasSubstr("--vocab-size 0 is out of range"));
  pin.vocab_size = 512;
  pin.tokenizer_hash = "XYZ";
  EXPECT_THAT(pin.Validate().message(), HasSubstr("--tokenizer-hash must be empty or up to 64"));
  pin.tokenizer_hash = "ab";
  EXPECT_TRUE(pin.Validate().ok());
  EXPECT_FALSE(pin.empty());
}

TEST(ClusterVoteTest, TheMajorityOfReachableWorkersWinsNotTheFirst) {
  ClusterVote vote({});
  const absl::Time t0 = absl::UnixEpoch();
  vote.Set(0, Params(32), nullptr, t0);  // the first to answer
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 32);
  vote.Set(1, Params(16), nullptr, t0 + absl::Seconds(1));
  EXPECT_FALSE(vote.Elect());  // 1 : 1, the adopted parameters stay
  EXPECT_EQ(vote.adopted()->block_size, 32);
  vote.Set(2, Params(16), nullptr, t0 + absl::Seconds(2));
  EXPECT_TRUE(vote.Elect());  // 2 : 1
  EXPECT_EQ(vote.adopted()->block_size, 16);
  EXPECT_EQ(vote.adopted_votes(), 2);
  EXPECT_EQ(vote.reachable_votes(), 3);

  // Unreachable voters count only to break ties: with both 16s down the
  // reachable 32 wins; one 16 back ties 1 : 1 and the 16s have more in all.
  vote.SetReachable(1, false);
  vote.SetReachable(2, false);
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 32);
  vote.SetReachable(1, true);
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 16);

  // Votes leave with their workers; the adopted parameters stay while any
  // vote agrees with them, and Clear() forgets everything.
  vote.Erase(1);
  vote.Erase(2);
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 32);
  vote.Erase(0);
  EXPECT_FALSE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 32);
  vote.Clear();
  EXPECT_FALSE(vote.adopted().has_value());
}

TEST(ClusterVoteTest, TiesGoToTheParametersReportedFirst) {
  ClusterVote vote({});
  const absl::Time t0 = absl::UnixEpoch();
  vote.Set(5, Params(64), nullptr, t0 + absl::Seconds(3));
  vote.Set(6, Params(8), nullptr, t0 + absl::Seconds(1));
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 8);
  // A worker whose report changes restarts its "reported since".
  vote.Set(6, Params(128), nullptr, t0 + absl::Seconds(4));
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 64);
}

TEST(ClusterVoteTest, ThePinOverridesTheMajority) {
  ClusterParamsPin pin;
  pin.block_size = 16;
  ClusterVote vote(pin);
  vote.Set(0, Params(32), nullptr, absl::UnixEpoch());
  vote.Set(1, Params(32), nullptr, absl::UnixEpoch());
  EXPECT_FALSE(vote.Elect());  // no vote agrees with the pin
  EXPECT_FALSE(vote.adopted().has_value());
  vote.Set(2, Params(16, "m2"), nullptr, absl::UnixEpoch());
  EXPECT_TRUE(vote.Elect());
  EXPECT_EQ(vote.adopted()->block_size, 16);
  EXPECT_EQ(vote.adopted()->model.id(), "m2");
  EXPECT_EQ(vote.adopted_votes(), 1);
}

}  // namespace
}  // namespace tessera::router
