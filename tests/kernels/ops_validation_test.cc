// The validation every op of kernels/ops.h does before touching data (its
// checks in kernels/op_checks.h): wrong shapes, dtypes, overlapping outputs
// and mixed devices are INVALID_ARGUMENT naming the op and the tensor, and a
// CUDA tensor without the CUDA path is FAILED_PRECONDITION. Part of ops_test.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

void ExpectInvalid(const absl::Status& s, const std::string& op, const std::string& detail) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(op + ":")) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(detail)) << s;
}

TEST(ValidationTest, WrongShapesNameTheOpAndTensor) {
  Tensor x = Tensor::Zeros(DType::kFloat32, {4, 64});
  Tensor w = Tensor::Zeros(DType::kFloat32, {32, 60});
  Tensor out = Tensor::Zeros(DType::kFloat32, {4, 32});
  ExpectInvalid(ops::Linear(x, w, nullptr, out), "Linear",
                "w must be float32 [*, 64], got float32 [32, 60]");
  Tensor w_ok = Tensor::Zeros(DType::kFloat32, {32, 64});
  Tensor bias = Tensor::Zeros(DType::kFloat32, {31});
  ExpectInvalid(ops::Linear(x, w_ok, &bias, out), "Linear", "bias must be float32 [32]");
  Tensor out_bad = Tensor::Zeros(DType::kFloat32, {4, 33});
  ExpectInvalid(ops::Linear(x, w_ok, nullptr, out_bad), "Linear", "out must be float32 [4, 32]");

  Tensor weight = Tensor::Zeros(DType::kFloat32, {63});
  ExpectInvalid(ops::RmsNorm(x, weight, 1e-5f, x), "RmsNorm", "weight");
  Tensor residual = Tensor::Zeros(DType::kFloat32, {3, 64});
  Tensor w64 = Tensor::Zeros(DType::kFloat32, {64});
  ExpectInvalid(ops::FusedAddRmsNorm(x, residual, w64, 1e-5f), "FusedAddRmsNorm", "residual");

  Tensor odd = Tensor::Zeros(DType::kFloat32, {4, 7});
  Tensor half = Tensor::Zeros(DType::kFloat32, {4, 3});
  ExpectInvalid(ops::SiluAndMul(odd, half), "SiluAndMul", "even number of columns");

  Tensor ids = Tensor::FromInts({1, 2}, {2});
  Tensor table = Tensor::Zeros(DType::kFloat32, {10, 8});
  Tensor emb_out = Tensor::Zeros(DType::kFloat32, {3, 8});
  ExpectInvalid(ops::Embedding(ids, table, 0, emb_out), "Embedding", "out must be float32 [2, 8]");

  Tensor kc = Tensor::Zeros(DType::kFloat32, {4, 16, 2, 8});
  Tensor vc = Tensor::Zeros(DType::kFloat32, {4, 16, 2, 8});
  Tensor k = Tensor::Zeros(DType::kFloat32, {3, 15});
  Tensor slots = Tensor::Zeros(DType::kInt64, {3});
  ExpectInvalid(ops::KvStore(k, k, slots, kc, vc), "KvStore",
                "k must be float32 [*, 16], got float32 [3, 15]");
}

TEST(ValidationTest, WrongDTypesNameTheOpAndTensor) {
  Tensor x = Tensor::Zeros(DType::kFloat32, {4, 64});
  Tensor w16 = Tensor::Zeros(DType::kBFloat16, {32, 64});
  Tensor out = Tensor::Zeros(DType::kFloat32, {4, 32});
  ExpectInvalid(ops::Linear(x, w16, nullptr, out), "Linear",
                "w must be float32 [*, 64], got bfloat16 [32, 64] on cpu");

  Tensor float_ids = Tensor::Zeros(DType::kFloat32, {2});
  Tensor table = Tensor::Zeros(DType::kFloat32, {10, 8});
  Tensor emb_out = Tensor::Zeros(DType::kFloat32, {2, 8});
  ExpectInvalid(ops::Embedding(float_ids, table, 0, emb_out), "Embedding", "ids must be int32");

  Tensor kc = Tensor::Zeros(DType::kFloat32, {4, 16, 2, 8});
  Tensor k = Tensor::Zeros(DType::kFloat32, {3, 16});
  Tensor slots32 = Tensor::Zeros(DType::kInt32, {3});
  ExpectInvalid(ops::KvStore(k, k, slots32, kc, kc), "KvStore", "slot_mapping must be int64 [3]");

  Tensor pos64 = Tensor::Zeros(DType::kInt64, {4});
  Tensor q = Tensor::Zeros(DType::kFloat32, {4, 64});
  Tensor kk = Tensor::Zeros(DType::kFloat32, {4, 16});
  Tensor cs = Tensor::Zeros(DType::kFloat32, {8, 16});
  ExpectInvalid(ops::ApplyRope(pos64, q, kk, 16, cs), "ApplyRope", "positions must be int32");

  Tensor undefined;
  ExpectInvalid(ops::GatherRows(x, undefined, out), "GatherRows",
                "indices must be int32 [*], got an undefined tensor");
}

// Linear's output dtype: x's, or float32 from half inputs without a bias.
// Checked on host-memory "CUDA" views, which only the validation may see.
TEST(ValidationTest, LinearOutputIsTheInputDTypeOrFloat32WithoutBias) {
  std::vector<uint16_t> buf(4096);
  Tensor x = Tensor::View(buf.data(), DType::kBFloat16, {2, 64}, Device::kCuda);
  Tensor w = Tensor::View(buf.data() + 512, DType::kBFloat16, {8, 64}, Device::kCuda);
  Tensor b = Tensor::View(buf.data() + 1536, DType::kBFloat16, {8}, Device::kCuda);
  Tensor out16 = Tensor::View(buf.data() + 2048, DType::kFloat16, {2, 8}, Device::kCuda);
  Tensor out32 = Tensor::View(buf.data() + 2560, DType::kFloat32, {2, 8}, Device::kCuda);
  ExpectInvalid(ops::Linear(x, w, nullptr, out16), "Linear",
                "out is float16 but x is bfloat16; out must be bfloat16 or float32");
  ExpectInvalid(ops::Linear(x, w, &b, out32), "Linear",
                "a float32 out from bfloat16 inputs takes no bias");
  Tensor w32 = Tensor::View(buf.data() + 3072, DType::kFloat32, {8, 64}, Device::kCuda);
  ExpectInvalid(ops::Linear(x, w32, nullptr, out32), "Linear",
                "w is float32 but x is bfloat16; they must match");
#if !TESSERA_HAVE_CUDA  // with it, host-memory "CUDA" views must not reach cuBLASLt
  // bfloat16 x, w -> float32 out passes validation and reaches the dispatch.
  const absl::Status s = ops::Linear(x, w, nullptr, out32);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("Linear: CUDA path not built"));
#endif
}

TEST(ValidationTest, OverlappingOutputIsRejected) {
  Tensor x = Tensor::Zeros(DType::kFloat32, {8, 8});
  Tensor w = Tensor::Zeros(DType::kFloat32, {8, 8});
  ExpectInvalid(ops::Linear(x, w, nullptr, x), "Linear", "out must not overlap x");
  // RmsNorm allows out == x but not a shifted overlap.
  Tensor w8 = Tensor::Zeros(DType::kFloat32, {8});
  Tensor shifted = x.Slice(1, 8);
  ExpectInvalid(ops::RmsNorm(x.Slice(0, 7), w8, 1e-5f, shifted), "RmsNorm",
                "out must not overlap x");
}

TEST(ValidationTest, CudaTensorsAreNotBuiltYetAndDevicesMustMatch) {
  std::vector<float> buf(64);
  Tensor x = Tensor::View(buf.data(), DType::kFloat32, {4, 4}, Device::kCuda);
  Tensor w = Tensor::View(buf.data() + 16, DType::kFloat32, {4}, Device::kCuda);
  Tensor out = Tensor::View(buf.data() + 32, DType::kFloat32, {4, 4}, Device::kCuda);
#if !TESSERA_HAVE_CUDA  // with it, these host-memory "CUDA" views must not reach a kernel
  const absl::Status s = ops::RmsNorm(x, w, 1e-5f, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("RmsNorm: CUDA path not built"));
#endif

  Tensor cpu_w = Tensor::Zeros(DType::kFloat32, {4});
  ExpectInvalid(ops::RmsNorm(x, cpu_w, 1e-5f, out), "RmsNorm", "weight is on cpu and x on cuda");
}

}  // namespace
}  // namespace tessera
