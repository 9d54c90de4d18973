// CudaGraph on a GPU (label gpu; skips without one): a capture whose body
// fails leaves the stream and the thread's error state usable, so the
// "stay eager" fallback runs its next step; a good capture replays the
// captured kernels on new input in the same buffers.
#include "worker/device/cuda_graph.h"

#include <cstdint>
#include <random>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

#if TESSERA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace tessera {
namespace {

class CudaGraphTest : public testing::CudaTest {};

#if TESSERA_HAVE_CUDA
using Stream = testing::TestStream;

TEST_F(CudaGraphTest, AFailedCaptureLeavesNothingForTheEagerFallback) {
  Stream stream;
  ScopedCudaStream scoped(stream.get());
  std::mt19937 rng(15);
  Tensor x = testing::RandomFloats(rng, {4, 128});
  Tensor w = testing::RandomFloats(rng, {128});
  Tensor ref = Tensor::Empty(DType::kFloat32, {4, 128});
  ASSERT_TRUE(ops::RmsNorm(x, w, 1e-5f, ref).ok());
  Tensor dx = testing::ToDevice(x, DType::kFloat32);
  Tensor dw = testing::ToDevice(w, DType::kFloat32);
  Tensor dout = Tensor::Empty(DType::kFloat32, {4, 128}, Device::kCuda);
  ASSERT_TRUE(ops::RmsNorm(dx, dw, 1e-5f, dout).ok());  // warm up outside capture

  // A body that waits for the host mid-capture: not capturable.
  auto failed = CudaGraph::Capture([&]() -> absl::Status {
    RETURN_IF_ERROR(ops::RmsNorm(dx, dw, 1e-5f, dout));
    return SynchronizeCurrentStream();
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("while capturing a CUDA graph"), std::string::npos)
      << failed.status();
  EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess) << "the failed capture left an error behind";

  // Eager: the next step's launches and their checks succeed.
  ASSERT_TRUE(ops::RmsNorm(dx, dw, 1e-5f, dout).ok());
  EXPECT_TRUE(
      testing::ElementwiseNear(testing::ToHostFloat(dout), testing::ToDoubles(ref), 1e-5, 1e-6));

  // And a good capture still works on this stream: replay on new input.
  auto graph = CudaGraph::Capture([&] { return ops::RmsNorm(dx, dw, 1e-5f, dout); });
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_GE((*graph)->num_nodes(), 1);
  Tensor x2 = testing::RandomFloats(rng, {4, 128});
  ASSERT_TRUE(ops::RmsNorm(x2, w, 1e-5f, ref).ok());
  ASSERT_TRUE(dx.CopyFrom(x2).ok());
  ASSERT_TRUE((*graph)->Replay().ok());
  EXPECT_TRUE(
      testing::ElementwiseNear(testing::ToHostFloat(dout), testing::ToDoubles(ref), 1e-5, 1e-6));
}
#else
TEST_F(CudaGraphTest, NeedsTheCudaPath) {}  // the fixture skips (or fails when required)
#endif

}  // namespace
}  // namespace tessera
