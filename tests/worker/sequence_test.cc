#include "worker/engine/sequence.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;

Sequence MakeSeq(std::vector<int32_t> prompt = {1, 2, 3}) {
  SamplingParams params;
  params.max_tokens = 4;
  return Sequence("req", SeqId(7), std::move(prompt), params, /*priority=*/2,
                  /*arrival_time_ns=*/123);
}

TEST(SequenceTest, StartsWaitingWithPromptOnly) {
  Sequence seq = MakeSeq();
  EXPECT_EQ(seq.request_id(), "req");
  EXPECT_EQ(seq.id(), SeqId(7));
  EXPECT_EQ(seq.priority(), 2);
  EXPECT_EQ(seq.arrival_time_ns(), 123);
  EXPECT_EQ(seq.status(), SequenceStatus::kWaiting);
  EXPECT_EQ(seq.finish_reason(), FinishReason::kNone);
  EXPECT_EQ(seq.num_tokens(), 3);
  EXPECT_EQ(seq.num_prompt_tokens(), 3);
  EXPECT_EQ(seq.num_output_tokens(), 0);
  EXPECT_EQ(seq.num_computed_tokens(), 0);
  EXPECT_EQ(seq.num_cached_tokens(), -1);
  EXPECT_TRUE(seq.block_table().empty());
  EXPECT_EQ(seq.num_preemptions(), 0);
  EXPECT_EQ(seq.last_token(), 3);
  EXPECT_EQ(seq.max_total_tokens(), 3 + 4);
}

TEST(SequenceTest, TokensAreOneContiguousSpan) {
  Sequence seq = MakeSeq();
  seq.ReserveOutput();
  seq.SetRunning();
  const int32_t* before = seq.all_tokens().data();
  seq.AppendToken(10);
  seq.AppendToken(11);
  EXPECT_EQ(seq.all_tokens().data(), before) << "max_tokens was reserved";
  EXPECT_THAT(seq.all_tokens(), ElementsAre(1, 2, 3, 10, 11));
  EXPECT_THAT(seq.prompt_tokens(), ElementsAre(1, 2, 3));
  EXPECT_THAT(seq.output_tokens(), ElementsAre(10, 11));
  EXPECT_EQ(seq.num_output_tokens(), 2);
  EXPECT_EQ(seq.last_token(), 11);
}

TEST(SequenceTest, WaitingRunningFinished) {
  Sequence seq = MakeSeq();
  seq.SetRunning();
  EXPECT_EQ(seq.status(), SequenceStatus::kRunning);
  seq.SetFinished(FinishReason::kEos);
  EXPECT_EQ(seq.status(), SequenceStatus::kFinished);
  EXPECT_TRUE(seq.is_finished());
  EXPECT_EQ(seq.finish_reason(), FinishReason::kEos);
}

TEST(SequenceTest, PreemptedGoesBackToWaitingThenRunsAgain) {
  Sequence seq = MakeSeq();
  seq.SetRunning();
  seq.SetPreempted();
  EXPECT_EQ(seq.status(), SequenceStatus::kPreempted);
  EXPECT_EQ(seq.num_preemptions(), 1);
  seq.SetWaiting();
  EXPECT_EQ(seq.status(), SequenceStatus::kWaiting);
  seq.SetRunning();
  seq.SetPreempted();
  EXPECT_EQ(seq.num_preemptions(), 2);
  seq.SetFinished(FinishReason::kAbort);
  EXPECT_EQ(seq.finish_reason(), FinishReason::kAbort);
}

TEST(SequenceTest, EveryUnfinishedStateCanFinish) {
  Sequence waiting = MakeSeq();
  waiting.SetFinished(FinishReason::kAbort);
  EXPECT_TRUE(waiting.is_finished());

  Sequence running = MakeSeq();
  running.SetRunning();
  running.SetFinished(FinishReason::kLength);
  EXPECT_EQ(running.finish_reason(), FinishReason::kLength);

  Sequence preempted = MakeSeq();
  preempted.SetRunning();
  preempted.SetPreempted();
  preempted.SetFinished(FinishReason::kError);
  EXPECT_EQ(preempted.finish_reason(), FinishReason::kError);
}

TEST(SequenceTest, Names) {
  EXPECT_EQ(FinishReasonName(FinishReason::kNone), "");
  EXPECT_EQ(FinishReasonName(FinishReason::kLength), "length");
  EXPECT_EQ(FinishReasonName(FinishReason::kStop), "stop");
  EXPECT_EQ(FinishReasonName(FinishReason::kEos), "eos");
  EXPECT_EQ(FinishReasonName(FinishReason::kAbort), "abort");
  EXPECT_EQ(FinishReasonName(FinishReason::kError), "error");
  EXPECT_EQ(SequenceStatusName(SequenceStatus::kWaiting), "waiting");
  EXPECT_EQ(SequenceStatusName(SequenceStatus::kRunning), "running");
  EXPECT_EQ(SequenceStatusName(SequenceStatus::kPreempted), "preempted");
  EXPECT_EQ(SequenceStatusName(SequenceStatus::kFinished), "finished");
}

TEST(SequenceDeathTest, ComputedTokensStayInRange) {
  Sequence seq = MakeSeq();
  seq.set_num_computed_tokens(3);
  EXPECT_EQ(seq.num_computed_tokens(), 3);
  EXPECT_DEATH(seq.set_num_computed_tokens(4), "num_computed_tokens 4 out of");
  EXPECT_DEATH(seq.set_num_computed_tokens(-1), "out of");
}

// Illegal transitions are programming errors: they abort with a message.
TEST(SequenceDeathTest, IllegalTransitionsAbort) {
  {
    Sequence seq = MakeSeq();
    EXPECT_DEATH(seq.SetPreempted(), "waiting -> preempted");
    EXPECT_DEATH(seq.SetWaiting(), "waiting -> waiting");
    EXPECT_DEATH(seq.AppendToken(5), "AppendToken on req in state waiting");
    EXPECT_DEATH(seq.SetFinished(FinishReason::kNone), "without a reason");
  }
  {
    Sequence seq = MakeSeq();
    seq.SetRunning();
    EXPECT_DEATH(seq.SetRunning(), "running -> running");
    EXPECT_DEATH(seq.SetWaiting(), "running -> waiting");
  }
  {
    Sequence seq = MakeSeq();
    seq.SetRunning();
    seq.SetPreempted();
    EXPECT_DEATH(seq.SetRunning(), "preempted -> running");
    EXPECT_DEATH(seq.SetPreempted(), "preempted -> preempted");
  }
  {
    Sequence seq = MakeSeq();
    seq.SetFinished(FinishReason::kStop);
    EXPECT_DEATH(seq.SetRunning(), "finished -> running");
    EXPECT_DEATH(seq.SetWaiting(), "finished -> waiting");
    EXPECT_DEATH(seq.SetPreempted(), "finished -> preempted");
    EXPECT_DEATH(seq.SetFinished(FinishReason::kAbort), "finished twice \\(stop, then abort\\)");
  }
}

}  // namespace
}  // namespace tessera
