// The device-independent parts of the CUDA path, which run everywhere (label
// unit): decode-graph buckets, local-rank discovery, backend and device
// names, NCCL error messages, and the refusals of a build or machine without
// a GPU. The parts that need a GPU skip.
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "tests/worker/gpu_test_util.h"
#include "worker/comm/gpu_peers.h"
#include "worker/comm/make_communicator.h"
#include "worker/device/cuda_graph.h"
#include "worker/engine/step_plan.h"
#include "worker/exec/model_executor.h"
#include "worker/replica.h"

#if TESSERA_HAVE_NCCL
#include "worker/comm/nccl_check.h"
#endif

namespace tessera {
namespace {

TEST(DecodeGraphBucketsTest, CoversEveryBatchUpToTheMax) {
  const std::vector<int> b = DecodeGraphBuckets(256);
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 1);
  EXPECT_EQ(b.back(), 256);
  EXPECT_EQ((std::vector<int>{b[0], b[1], b[2], b[3], b[4], b[5]}),
            (std::vector<int>{1, 2, 4, 8, 16, 24}));
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  for (int batch = 1; batch <= 256; ++batch) {
    const int bucket = BucketFor(b, batch);
    ASSERT_GE(bucket, batch);
    // Fewer padding rows than the step between buckets there.
    const int step = batch <= 8 ? batch : batch <= 64 ? 8 : batch <= 128 ? 16 : 32;
    EXPECT_LT(bucket - batch, step) << batch;
  }
  EXPECT_EQ(BucketFor(b, 257), -1);
}

TEST(DecodeGraphBucketsTest, OddMaximumIsItsOwnBucket) {
  EXPECT_EQ(DecodeGraphBuckets(5), (std::vector<int>{1, 2, 4, 5}));
  EXPECT_EQ(DecodeGraphBuckets(1), (std::vector<int>{1}));
  EXPECT_TRUE(DecodeGraphBuckets(0).empty());
  EXPECT_EQ(BucketFor({}, 1), -1);
}

TEST(LocalRankTest, ReadsTheLaunchersVariables) {
  const char* saved = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  const std::string keep = saved == nullptr ? "" : saved;
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
  EXPECT_EQ(LocalRankFromEnv(), 3);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "not a number", 1);
  EXPECT_GE(LocalRankFromEnv(), 0);
  if (saved == nullptr) {
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  } else {
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", keep.c_str(), 1);
  }
}

TEST(TpBackendTest, ParsesNames) {
  EXPECT_EQ(*ParseTpBackend("auto"), TpBackend::kAuto);
  EXPECT_EQ(*ParseTpBackend("NCCL"), TpBackend::kNccl);
  EXPECT_EQ(*ParseTpBackend("host-staged"), TpBackend::kHostStaged);
  EXPECT_EQ(*ParseTpBackend("host"), TpBackend::kHostStaged);
  EXPECT_EQ(*ParseTpBackend("mpi"), TpBackend::kMpi);
  const auto bad = ParseTpBackend("gloo");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("gloo"), std::string::npos);
  EXPECT_EQ(TpBackendName(TpBackend::kHostStaged), "host-staged");
}

TEST(ResolveDeviceTest, NamesAndAbsentGpus) {
  EXPECT_EQ(*ResolveDevice("cpu"), Device::kCpu);
  EXPECT_FALSE(ResolveDevice("tpu").ok());
  const absl::StatusOr<Device> any = ResolveDevice("auto");
  ASSERT_TRUE(any.ok());
  const absl::StatusOr<Device> cuda = ResolveDevice("cuda");
  if (UsableCudaDevices() == 0) {
    EXPECT_EQ(*any, Device::kCpu);
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(CudaUnavailableReason().empty());
  } else {
    EXPECT_EQ(*any, Device::kCuda);
    EXPECT_EQ(*cuda, Device::kCuda);
    EXPECT_TRUE(CudaUnavailableReason().empty());
  }
}

TEST(DeviceSelectionTest, LocalRanksWrapAroundTheDevices) {
  TESSERA_REQUIRE_GPU();
  const int n = UsableCudaDevices();
  for (int r = 0; r < 3 * n; ++r) EXPECT_EQ(*DeviceForLocalRank(r), r % n);
  EXPECT_FALSE(DeviceForLocalRank(-1).ok());
  ASSERT_TRUE(SelectCudaDevice(n - 1).ok());
  EXPECT_EQ(*CurrentCudaDevice(), n - 1);
  const auto bad = SelectCudaDevice(n);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find(std::to_string(n)), std::string::npos) << bad;
  const auto info = GetCudaDeviceInfo(0);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->uuid.size(), 32u);
  EXPECT_GT(info->total_memory, 0);
  ASSERT_TRUE(SelectCudaDevice(0).ok());
  const auto mem = CudaMemoryInfo();
  ASSERT_TRUE(mem.ok()) << mem.status();
  EXPECT_GT(mem->free, 0);
  EXPECT_LE(mem->free, mem->total);
  // A single process drives its GPU alone.
  auto comm = MakeSingleProcessCommunicator();
  EXPECT_EQ(*RanksOnThisGpu(*comm), 1);
}

TEST(DeviceSelectionTest, WithoutAGpuEverythingSaysWhy) {
  if (UsableCudaDevices() > 0) GTEST_SKIP() << "a GPU is present";
  const auto sel = DeviceForLocalRank(0);
  ASSERT_FALSE(sel.ok());
  EXPECT_EQ(sel.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(CudaMemoryInfo().ok());
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.device = "cuda";
  const auto replica = BuildReplica(o, MakeSingleProcessCommunicator());
  ASSERT_FALSE(replica.ok());
  EXPECT_NE(replica.status().message().find("--device cuda"), std::string::npos)
      << replica.status();
}

TEST(ReplicaOptionsTest, CpuRefusesHalfPrecision) {
  ReplicaOptions o;
  o.dummy_preset = "tiny";
  o.dtype = "bfloat16";
  const auto replica = BuildReplica(o, MakeSingleProcessCommunicator());
  ASSERT_FALSE(replica.ok());
  EXPECT_EQ(replica.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(replica.status().message().find("float32"), std::string::npos) << replica.status();
}

TEST(SyntheticPrefillPlanTest, SplitsTokensOverSequences) {
  int64_t blocks = 0;
  const v1::StepPlan plan = SyntheticPrefillPlan(10, 3, 4, 7, &blocks);
  EXPECT_EQ(plan.token_ids_size(), 10);
  EXPECT_EQ(plan.seq_lens_size(), 3);
  EXPECT_EQ(plan.seq_lens(0), 4);
  EXPECT_EQ(plan.seq_lens(1), 3);
  EXPECT_EQ(plan.seq_lens(2), 3);
  EXPECT_EQ(plan.logits_indices_size(), 3);
  EXPECT_EQ(plan.logits_indices(2), 9);
  EXPECT_EQ(blocks, 3);  // one block of 4 each
  EXPECT_EQ(plan.max_blocks_per_seq(), 1);
  for (int32_t t : plan.token_ids()) EXPECT_LT(t, 7);
  // Slots stay inside each sequence's own blocks.
  EXPECT_EQ(plan.slot_mapping(4), 4);  // sequence 1, position 0 -> block 1
  EXPECT_EQ(plan.slot_mapping(7), 8);  // sequence 2, position 0 -> block 2
}

#if TESSERA_HAVE_NCCL
TEST(NcclStatusTest, NamesTheCallAndTheCode) {
  const absl::Status ok = cuda::NcclStatus(ncclSuccess, "ncclAllReduce(a, b)");
  EXPECT_TRUE(ok.ok());
  const absl::Status s = cuda::NcclStatus(ncclInvalidArgument, "ncclAllReduce(a, b, c)");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("ncclAllReduce failed"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("(a, b"), std::string::npos) << s;
  EXPECT_NE(s.message().find("ncclInvalidArgument = 4"), std::string::npos) << s;
  const absl::Status remote = cuda::NcclStatus(ncclRemoteError, "ncclAllGather");
  EXPECT_EQ(remote.code(), absl::StatusCode::kUnavailable);
}
#endif

}  // namespace
}  // namespace tessera
