// Tensor parallelism on CUDA devices (label gpu, run under mpirun with 2
// ranks; skips without a GPU). On a machine with one GPU both ranks share it
// through the host-staged communicator, which is what MakeCommunicator picks
// there; with a GPU per rank it picks NCCL.
//   - stories260K in float32 at TP=2 reproduces llama2.c's greedy reference
//     (each prompt's safe_prefix tokens), with the KV cache sized from
//     --gpu-memory-utilization split between the ranks on a GPU;
//   - the communicator's all-reduce and all-gather on device tensors in
//     float32, bfloat16 and float16 agree with the values computed on the host.
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu_required.h"
#include "tests/testing/requests.h"
#include "tests/testing/stories.h"
#include "tests/worker/gpu_test_util.h"
#include "worker/comm/make_communicator.h"
#include "worker/exec/replica_protocol.h"
#include "worker/replica.h"

namespace tessera {
namespace {

MpiSession* g_session = nullptr;

// Every rank must agree on skipping (a skipped rank would leave the others
// waiting in a collective).
bool AnyRankLacksGpu() {
  int lacks = UsableCudaDevices() == 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &lacks, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return lacks != 0;
}

#define REQUIRE_GPU_ON_EVERY_RANK()                                                            \
  do {                                                                                         \
    if (AnyRankLacksGpu()) {                                                                   \
      TESSERA_GPU_TEST_CANNOT_RUN("a rank has no usable CUDA device ("                         \
                                  << CudaUnavailableReason() << "); this GPU test needs one"); \
    }                                                                                          \
  } while (0)

absl::StatusOr<std::unique_ptr<Communicator>> GpuComm() {
  ASSIGN_OR_RETURN(const int gpu, DeviceForLocalRank(g_session->local_rank()));
  RETURN_IF_ERROR(SelectCudaDevice(gpu));
  CommunicatorOptions o;
  o.device = Device::kCuda;
  return MakeCommunicator(*g_session, o);
}

TEST(GpuTpTest, CollectivesOnDeviceTensors) {
  REQUIRE_GPU_ON_EVERY_RANK();
  auto comm = GpuComm();
  ASSERT_TRUE(comm.ok()) << comm.status();
  Communicator& c = **comm;
  if (c.rank() == 0) std::printf("communicator: %s\n", c.name().c_str());
  const int n = 1000;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    // Rank r holds (r + 1) * (i % 7 - 3) / 4: exact in every dtype, and so is the sum.
    std::vector<float> mine(n);
    for (int i = 0; i < n; ++i) mine[i] = (c.rank() + 1) * ((i % 7) - 3) / 4.0f;
    Tensor host = Tensor::Empty(dtype, {n});
    for (int i = 0; i < n; ++i) {
      switch (dtype) {
        case DType::kFloat32:
          host.data_as<float>()[i] = mine[i];
          break;
        case DType::kBFloat16:
          host.data_as<uint16_t>()[i] = FloatToBFloat16(mine[i]);
          break;
        default:
          host.data_as<uint16_t>()[i] = FloatToHalf(mine[i]);
          break;
      }
    }
    auto dev = host.To(Device::kCuda);
    ASSERT_TRUE(dev.ok()) << dev.status();
    ASSERT_TRUE(c.AllReduceSum(*dev).ok());
    auto back = dev->To(Device::kCpu);
    ASSERT_TRUE(back.ok()) << back.status();
    std::vector<float> got(n);
    ConvertToFloat32(back->data(), dtype, n, got.data());
    const int world = c.size();
    for (int i = 0; i < n; ++i) {
      const float want = world * (world + 1) / 2.0f * ((i % 7) - 3) / 4.0f;
      ASSERT_EQ(got[i], want) << DTypeName(dtype) << " element " << i;
    }
    // All-gather: out[r] = rank r's input.
    Tensor gathered = Tensor::Empty(dtype, {world, n}, Device::kCuda);
    ASSERT_TRUE(c.AllGather(*host.To(Device::kCuda), gathered).ok());
    auto all = gathered.To(Device::kCpu);
    ASSERT_TRUE(all.ok());
    std::vector<float> g(static_cast<size_t>(world) * n);
    ConvertToFloat32(all->data(), dtype, g.size(), g.data());
    for (int r = 0; r < world; ++r) {
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(g[r * n + i], (r + 1) * ((i % 7) - 3) / 4.0f) << "rank " << r << " " << i;
      }
    }
  }
  // CPU tensors still go over MPI.
  Tensor cpu = Tensor::FromFloats({1.0f, 2.0f}, {2});
  ASSERT_TRUE(c.AllReduceSum(cpu).ok());
  EXPECT_EQ(cpu.data_as<float>()[1], 2.0f * c.size());
}

TEST(GpuTpTest, StoriesFloat32ReproducesGreedyReference) {
  REQUIRE_GPU_ON_EVERY_RANK();
  TESSERA_REQUIRE_STORIES();
  auto comm = GpuComm();
  ASSERT_TRUE(comm.ok()) << comm.status();
  ReplicaOptions o;
  o.model_dir = testing::StoriesDir();
  o.device = "cuda";
  o.dtype = "float32";
  o.local_rank = g_session->local_rank();
  o.gpu_memory_utilization = 0.3;
  o.sched.max_num_seqs = 16;
  o.sched.max_num_batched_tokens = 256;
  o.threads = 1;
  auto replica = BuildReplica(o, *std::move(comm));
  ASSERT_TRUE(replica.ok()) << replica.status();
  Replica& r = **replica;
  EXPECT_GT(r.cache.num_blocks, 100);
  if (r.comm->rank() != 0) {
    absl::Status s = RunFollower(*r.executor, *r.comm);
    EXPECT_TRUE(s.ok()) << s;
    return;
  }
  const auto refs = testing::LoadGreedyReference();
  for (size_t i = 0; i < refs.size(); ++i) {
    EXPECT_TRUE(
        r.engine
            ->AddRequest(testing::GreedyEngineRequest("r" + std::to_string(i), refs[i].prompt, 64))
            .ok());
  }
  auto done = testing::RunEngine(*r.engine);
  // Whatever happened, release the follower before any ASSERT can return.
  ASSERT_TRUE(r.engine->Shutdown().ok());
  std::printf("TP=%d over %s: %lld graph steps, %lld eager steps\n", r.comm->size(),
              r.comm->name().c_str(), static_cast<long long>(r.executor->stats().graph_steps),
              static_cast<long long>(r.executor->stats().eager_steps));
  for (size_t i = 0; i < refs.size(); ++i) {
    const auto& got = done["r" + std::to_string(i)].tokens;
    ASSERT_GE(got.size(), static_cast<size_t>(refs[i].safe_prefix));
    for (int k = 0; k < refs[i].safe_prefix; ++k) {
      ASSERT_EQ(got[k], refs[i].generated[k])
          << "TP=2 on GPU, prompt " << i << ": first difference at generated token " << k;
    }
  }
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto session = tessera::MpiSession::Init(&argc, &argv);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", std::string(session.status().message()).c_str());
    return 1;
  }
  tessera::g_session = session->get();
  if ((*session)->world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int result = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
