// The CUDA kernels at the shapes of the models the first GPU run serves
// (Llama-3-8B and Qwen3-8B), against the CPU ops on the same rounded inputs:
// every projection of a layer and the lm_head (bfloat16 in, the lm_head
// writing float32 logits), RMSNorm over the hidden size, SiLU-and-mul over
// the intermediate size, and sampling over the full vocabulary (the same
// tokens as the CPU, bit for bit: one rule on both devices). The attention
// kernels at these head shapes are in cuda_attention_test (ModelHeadShapes).
// Label gpu: skips without a device (fails under TESSERA_REQUIRE_GPU=1).
#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/sampling_test_util.h"

namespace tessera {
namespace {

using testing::CudaTest;
using testing::NormwiseNear;
using testing::RandomFloats;
using testing::RelTol;
using testing::RoundTo;
using testing::ToDevice;
using testing::ToDoubles;
using testing::ToHostFloat;
using testing::Upload;

struct ModelShape {
  const char* name;
  int64_t hidden, heads, kv_heads, head_dim, intermediate, vocab;
};

const ModelShape kModels[] = {
    {"Llama-3-8B", 4096, 32, 8, 128, 14336, 128256},
    {"Qwen3-8B", 4096, 32, 8, 128, 12288, 151936},
};

class CudaModelShapesTest : public CudaTest {};

// out = x @ w^T on the GPU (x, w in `dtype`, out in `out_dtype`) against the
// CPU in float32 on the same rounded values.
void CheckLinear(std::mt19937& rng, int64_t n, int64_t k, int64_t m, DType dtype, DType out_dtype,
                 double tol) {
  SCOPED_TRACE(absl::StrCat("Linear n ", n, " k ", k, " m ", m, " ", DTypeName(dtype), " -> ",
                            DTypeName(out_dtype)));
  Tensor x = RoundTo(RandomFloats(rng, {n, k}), dtype);
  Tensor w = RoundTo(RandomFloats(rng, {m, k}, -0.05f, 0.05f), dtype);
  Tensor ref = Tensor::Empty(DType::kFloat32, {n, m});
  ASSERT_TRUE(ops::Linear(x, w, nullptr, ref).ok());
  Tensor out = Tensor::Empty(out_dtype, {n, m}, Device::kCuda);
  const absl::Status st = ops::Linear(ToDevice(x, dtype), ToDevice(w, dtype), nullptr, out);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(NormwiseNear(ToHostFloat(out), ToDoubles(ref), tol));
}

TEST_F(CudaModelShapesTest, EveryProjectionAndTheLmHead) {
  std::mt19937 rng(1601);
  const DType bf16 = DType::kBFloat16;
  for (const ModelShape& s : kModels) {
    SCOPED_TRACE(s.name);
    const int64_t q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
    for (int64_t n : {1, 37}) {  // a decode row; a prefill chunk
      CheckLinear(rng, n, s.hidden, q + 2 * kv, bf16, bf16, RelTol(bf16));          // qkv
      CheckLinear(rng, n, q, s.hidden, bf16, bf16, RelTol(bf16));                   // o
      CheckLinear(rng, n, s.hidden, 2 * s.intermediate, bf16, bf16, RelTol(bf16));  // gate_up
      CheckLinear(rng, n, s.intermediate, s.hidden, bf16, bf16, RelTol(bf16));      // down
      // The lm_head: float32 logits from bfloat16 inputs, float32-level error.
      CheckLinear(rng, n, s.hidden, s.vocab, bf16, DType::kFloat32, 1e-5);
    }
  }
}

TEST_F(CudaModelShapesTest, NormAndActivation) {
  std::mt19937 rng(1602);
  for (const ModelShape& s : kModels) {
    for (DType dtype : {DType::kBFloat16, DType::kFloat32}) {
      SCOPED_TRACE(absl::StrCat(s.name, " ", DTypeName(dtype)));
      const int64_t n = 19;
      Tensor x = RoundTo(RandomFloats(rng, {n, s.hidden}, -3.f, 3.f), dtype);
      Tensor w = RoundTo(RandomFloats(rng, {s.hidden}, 0.5f, 1.5f), dtype);
      Tensor ref = Tensor::Empty(DType::kFloat32, {n, s.hidden});
      ASSERT_TRUE(ops::RmsNorm(x, w, 1e-5f, ref).ok());
      Tensor out = Tensor::Empty(dtype, {n, s.hidden}, Device::kCuda);
      ASSERT_TRUE(ops::RmsNorm(ToDevice(x, dtype), ToDevice(w, dtype), 1e-5f, out).ok());
      EXPECT_TRUE(NormwiseNear(ToHostFloat(out), ToDoubles(ref), RelTol(dtype)));

      Tensor gu = RoundTo(RandomFloats(rng, {n, 2 * s.intermediate}, -6.f, 6.f), dtype);
      Tensor act_ref = Tensor::Empty(DType::kFloat32, {n, s.intermediate});
      ASSERT_TRUE(ops::SiluAndMul(gu, act_ref).ok());
      Tensor act = Tensor::Empty(dtype, {n, s.intermediate}, Device::kCuda);
      ASSERT_TRUE(ops::SiluAndMul(ToDevice(gu, dtype), act).ok());
      EXPECT_TRUE(NormwiseNear(ToHostFloat(act), ToDoubles(act_ref), RelTol(dtype)));
    }
  }
}

TEST_F(CudaModelShapesTest, SamplingOverTheFullVocabularyMatchesTheCpuExactly) {
  std::mt19937 rng(1603);
  for (const ModelShape& s : kModels) {
    SCOPED_TRACE(s.name);
    // Peaked logits, like a model's: N(0, 3).
    const int64_t n = 24;
    std::normal_distribution<float> normal(0.f, 3.f);
    std::vector<float> values(n * s.vocab);
    for (float& v : values) v = normal(rng);
    Tensor logits = Tensor::FromFloats(values, {n, s.vocab});
    std::vector<testing::RowSampling> rows(n);
    for (int64_t i = 0; i < n; ++i) {
      testing::RowSampling& r = rows[i];
      r.temperature = i % 6 == 0 ? 0.f : 0.6f + 0.1f * static_cast<float>(i % 5);
      r.top_k = i % 3 == 0 ? -1 : 20 + static_cast<int32_t>(i);
      r.top_p = i % 2 == 0 ? 1.f : 0.9f;
      r.min_p = i % 4 == 1 ? 0.05f : 0.f;
      r.seed = 1000 + i;
      r.step = 7 * i;
    }
    const ops::SamplingTensors params = testing::MakeSamplingTensors(rows);
    Tensor cpu_tokens = Tensor::Empty(DType::kInt32, {n});
    Tensor cpu_lp = Tensor::Empty(DType::kFloat32, {n});
    ASSERT_TRUE(ops::Sample(logits, params, cpu_tokens, cpu_lp).ok());
    const ops::SamplingTensors dp{Upload(params.temperature), Upload(params.top_k),
                                  Upload(params.top_p),       Upload(params.min_p),
                                  Upload(params.seed),        Upload(params.step)};
    Tensor tokens = Tensor::Empty(DType::kInt32, {n}, Device::kCuda);
    Tensor lp = Tensor::Empty(DType::kFloat32, {n}, Device::kCuda);
    const absl::Status st = ops::Sample(Upload(logits), dp, tokens, lp);
    ASSERT_TRUE(st.ok()) << st;
    Tensor got = testing::Download(tokens);
    Tensor got_lp = testing::Download(lp);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(got.data_as<int32_t>()[i], cpu_tokens.data_as<int32_t>()[i]) << "row " << i;
      EXPECT_NEAR(got_lp.data_as<float>()[i], cpu_lp.data_as<float>()[i], 1e-3f) << "row " << i;
    }
  }
}

}  // namespace
}  // namespace tessera
