// Communicator tests. Registered three ways: under mpirun with 2 and 4 ranks
// (label mpi), and as a plain process (label unit), where MPI runs as a
// singleton of size 1 and the single-process communicator is checked too.
// Every rank runs every test; collectives are called the same way on all ranks.
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/comm/make_communicator.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const absl::Status status_ = (expr);                   \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_; \
  } while (0)

int WorldRank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int WorldSize() {
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// The tests run on both MPI communicator flavours: blocking calls (no
// timeout) and non-blocking calls polled against a (generous) deadline.
class MpiCommunicatorTest : public ::testing::TestWithParam<int /*timeout ms*/> {
 protected:
  void SetUp() override {
    MpiCommunicatorOptions options;
    options.timeout = std::chrono::milliseconds(GetParam());
    auto comm = MakeMpiCommunicator(options);
    ASSERT_TRUE(comm.ok()) << comm.status();
    comm_ = std::move(*comm);
  }
  std::unique_ptr<Communicator> comm_;
};

INSTANTIATE_TEST_SUITE_P(Flavours, MpiCommunicatorTest, ::testing::Values(0, 60000),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == 0 ? std::string("Blocking")
                                                  : std::string("WithTimeout");
                         });

TEST_P(MpiCommunicatorTest, RankAndSize) {
  EXPECT_EQ(comm_->name(), "mpi");
  EXPECT_EQ(comm_->rank(), WorldRank());
  EXPECT_EQ(comm_->size(), WorldSize());
  ASSERT_OK(comm_->Barrier());
}

TEST_P(MpiCommunicatorTest, AllReduceSumEqualsAnalyticSum) {
  const int size = comm_->size();
  const int rank = comm_->rank();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1} << 20}) {
    // Small integers: every partial sum is exact in float32.
    std::vector<float> values(n);
    for (int64_t i = 0; i < n; ++i) values[i] = static_cast<float>(rank * 1000 + i % 997);
    Tensor t = Tensor::FromFloats(values, {n});
    ASSERT_OK(comm_->AllReduceSum(t));
    const float* out = t.data_as<float>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float expected = 1000.0f * size * (size - 1) / 2 + static_cast<float>(size * (i % 997));
      wrong += out[i] != expected;
    }
    EXPECT_EQ(wrong, 0) << "n = " << n;
  }
  // A 2-D tensor of random values: close to the float64 sum of every rank's
  // values (each rank can recompute the others'), and identical on all ranks.
  const int64_t rows = 33, cols = 65;
  auto values_of = [&](int r) {
    std::mt19937 rng(100 + r);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(rows * cols);
    for (float& x : v) x = dist(rng);
    return v;
  };
  Tensor t = Tensor::FromFloats(values_of(rank), {rows, cols});
  ASSERT_OK(comm_->AllReduceSum(t));
  std::vector<double> ref(rows * cols, 0.0);
  for (int r = 0; r < size; ++r) {
    std::vector<float> v = values_of(r);
    for (size_t i = 0; i < v.size(); ++i) ref[i] += v[i];
  }
  for (int64_t i = 0; i < rows * cols; ++i) EXPECT_NEAR(t.data_as<float>()[i], ref[i], 1e-5);
  Tensor all;
  ASSERT_OK(comm_->AllGather(t, all));
  const float* g = all.data_as<float>();
  int64_t differ = 0;
  for (int r = 1; r < size; ++r) {
    for (int64_t i = 0; i < rows * cols; ++i) differ += g[r * rows * cols + i] != g[i];
  }
  EXPECT_EQ(differ, 0) << "ranks disagree on the all-reduced values";

  Tensor ints = Tensor::FromInts({1, 2}, {2});
  absl::Status s = comm_->AllReduceSum(ints);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("float32"));
}

TEST_P(MpiCommunicatorTest, AllGatherLayout) {
  const int size = comm_->size();
  const int rank = comm_->rank();
  std::vector<int32_t> mine(3 * 5);
  for (int i = 0; i < 15; ++i) mine[i] = rank * 100 + i;
  Tensor in = Tensor::FromInts(mine, {3, 5});
  Tensor out;  // allocated by AllGather
  ASSERT_OK(comm_->AllGather(in, out));
  EXPECT_THAT(out.shape(), ::testing::ElementsAre(size, 3, 5));
  EXPECT_EQ(out.dtype(), DType::kInt32);
  for (int r = 0; r < size; ++r) {
    for (int i = 0; i < 15; ++i) EXPECT_EQ(out.data_as<int32_t>()[r * 15 + i], r * 100 + i);
  }

  // Preallocated output, 16-bit elements.
  Tensor half_in = Tensor::Empty(DType::kBFloat16, {4});
  for (int i = 0; i < 4; ++i) half_in.data_as<uint16_t>()[i] = FloatToBFloat16(rank + 0.5f * i);
  Tensor half_out = Tensor::Zeros(DType::kBFloat16, {size, 4});
  void* const before = half_out.data();
  ASSERT_OK(comm_->AllGather(half_in, half_out));
  EXPECT_EQ(half_out.data(), before);
  for (int r = 0; r < size; ++r) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(BFloat16ToFloat(half_out.data_as<uint16_t>()[r * 4 + i]), r + 0.5f * i);
    }
  }

  // A wrong preallocated output is refused on every rank (no collective runs).
  Tensor wrong = Tensor::Zeros(DType::kInt32, {size, 15});
  absl::Status s = comm_->AllGather(in, wrong);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("expected int32[" + std::to_string(size) + ", 3, 5]"));
  ASSERT_OK(comm_->Barrier());  // the communicator is still usable
}

std::string Pattern(size_t n, int root) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + root * 7) & 0xff);
  return s;
}

TEST_P(MpiCommunicatorTest, BroadcastVariableLengthBytes) {
  const int rank = comm_->rank();
  for (int root : {0, comm_->size() - 1}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{1} << 20}) {
      // Non-roots start with a string of another length and content.
      std::string bytes = rank == root ? Pattern(n, root) : std::string(17 + rank, 'x');
      ASSERT_OK(comm_->Broadcast(bytes, root));
      EXPECT_EQ(bytes.size(), n) << "root " << root;
      EXPECT_TRUE(bytes == Pattern(n, root)) << "root " << root << ", " << n << " bytes";
    }
  }
  std::string bytes = "abc";
  absl::Status s = comm_->Broadcast(bytes, comm_->size());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("root"));
  s = comm_->Broadcast(bytes, -1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bytes, "abc");
}

TEST(MpiTimeoutTest, HungPeerGivesDeadlineExceededAndBreaksTheCommunicator) {
  if (WorldSize() < 2) GTEST_SKIP() << "needs at least 2 ranks";
  const int rank = WorldRank();
  MpiCommunicatorOptions options;
  options.timeout = std::chrono::milliseconds(rank == 0 ? 200 : 0);
  auto made = MakeMpiCommunicator(options);  // collective
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<Communicator> comm = std::move(*made);
  if (rank == 0) {
    // The other ranks only enter this barrier after the world barrier below,
    // which rank 0 reaches only after giving up: the timeout is certain.
    absl::Status s = comm->Barrier();
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("MPI_Ibarrier"));
    Tensor t = Tensor::FromFloats({1.0f}, {1});
    s = comm->AllReduceSum(t);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("broken"));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank != 0) {
    // Completes rank 0's abandoned barrier, so no operation is left half-done.
    ASSERT_OK(comm->Barrier());
  }
}

TEST(MpiErrorTest, ErrorCodesBecomeStatusesNamingTheCall) {
  EXPECT_TRUE(MpiErrorToStatus("MPI_Bcast", MPI_SUCCESS).ok());
  absl::Status s = MpiErrorToStatus("MPI_Bcast", MPI_ERR_ROOT);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(MPI_ERR_ROOT, text, &len);
  EXPECT_THAT(std::string(s.message()), HasSubstr("MPI_Bcast failed: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(text, len)));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("(MPI error " + std::to_string(MPI_ERR_ROOT) + ")"));
}

MpiSession* g_session = nullptr;  // set by main()

TEST(MpiSessionTest, RanksAndSecondSessionRefused) {
  ASSERT_NE(g_session, nullptr);
  EXPECT_EQ(g_session->world_rank(), WorldRank());
  EXPECT_EQ(g_session->world_size(), WorldSize());
  // Every rank of these tests runs on this one machine.
  EXPECT_EQ(g_session->local_size(), WorldSize());
  EXPECT_EQ(g_session->local_rank(), WorldRank());
  int level = 0;
  MPI_Query_thread(&level);
  EXPECT_GE(level, MPI_THREAD_SERIALIZED);
  auto second = MpiSession::Init(nullptr, nullptr);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SingleProcessCommunicatorTest, TrivialBehaviour) {
  std::unique_ptr<Communicator> comm = MakeSingleProcessCommunicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->name(), "single");
  ASSERT_OK(comm->Barrier());

  Tensor t = Tensor::FromFloats({1.5f, -2.0f}, {2});
  ASSERT_OK(comm->AllReduceSum(t));
  EXPECT_EQ(t.data_as<float>()[0], 1.5f);
  EXPECT_EQ(t.data_as<float>()[1], -2.0f);
  Tensor ints = Tensor::FromInts({1}, {1});
  EXPECT_EQ(comm->AllReduceSum(ints).code(), absl::StatusCode::kInvalidArgument);

  Tensor in = Tensor::FromInts({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor out;
  ASSERT_OK(comm->AllGather(in, out));
  EXPECT_THAT(out.shape(), ::testing::ElementsAre(1, 2, 3));
  EXPECT_EQ(out.data_as<int32_t>()[5], 6);
  Tensor pre = Tensor::Zeros(DType::kInt32, {1, 2, 3});
  ASSERT_OK(comm->AllGather(in, pre));
  EXPECT_NE(pre.data(), in.data());
  EXPECT_EQ(pre.data_as<int32_t>()[4], 5);
  Tensor wrong = Tensor::Zeros(DType::kInt32, {2, 3});
  EXPECT_EQ(comm->AllGather(in, wrong).code(), absl::StatusCode::kInvalidArgument);

  std::string bytes = "keep me";
  ASSERT_OK(comm->Broadcast(bytes, 0));
  EXPECT_EQ(bytes, "keep me");
  EXPECT_EQ(comm->Broadcast(bytes, 1).code(), absl::StatusCode::kInvalidArgument);
}

// Rank 0 prints gtest's usual output; the other ranks print only their
// failures, prefixed with their rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
};

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto session = tessera::MpiSession::Init(&argc, &argv);  // MPI_Init_thread / MPI_Finalize
  if (!session.ok()) {
    std::fprintf(stderr, "MpiSession::Init: %s\n", std::string(session.status().message()).c_str());
    return 1;
  }
  tessera::g_session = session->get();
  const int rank = (*session)->world_rank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new tessera::FailurePrinter(rank));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed && !failed) {
    std::fprintf(stderr, "FAILED on another rank: see the [rank N] lines above\n");
  }
  tessera::g_session = nullptr;
  session->reset();  // MPI_Finalize
  return any_failed;
}
