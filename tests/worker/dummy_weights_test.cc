// Tests of the deterministic dummy weights (MakeDummyWeightSource,
// worker/model/weight_source.h): a pure function of seed, name and index, so
// shards are slices of the full tensor, half types are the rounded floats,
// and the scale depends on the kind of tensor.
#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/safetensors_test_util.h"
#include "worker/model/model_config.h"
#include "worker/model/weight_source.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::SubMatrix;
using testing_util::ToVector;

TEST(DummyWeightsTest, DeterministicPerSeedAndName) {
  auto a = MakeDummyWeightSource(7);
  auto b = MakeDummyWeightSource(7);
  auto c = MakeDummyWeightSource(8);
  EXPECT_TRUE(a->Has("anything"));
  EXPECT_THAT(a->Describe(), HasSubstr("7"));
  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  auto x = a->Load(name, {64, 48}, ShardSpec::Full(), DType::kFloat32);
  auto y = b->Load(name, {64, 48}, ShardSpec::Full(), DType::kFloat32);
  auto z = c->Load(name, {64, 48}, ShardSpec::Full(), DType::kFloat32);
  auto other = a->Load("model.layers.1.self_attn.q_proj.weight", {64, 48}, ShardSpec::Full(),
                       DType::kFloat32);
  ASSERT_TRUE(x.ok() && y.ok() && z.ok() && other.ok());
  EXPECT_EQ(ToVector(*x), ToVector(*y));
  EXPECT_NE(ToVector(*x), ToVector(*z));
  EXPECT_NE(ToVector(*x), ToVector(*other));
  // Elements differ from each other too (no constant fill).
  const std::vector<float> v = ToVector(*x);
  EXPECT_NE(v[0], v[1]);
}

TEST(DummyWeightsTest, ShardsEqualSlicesOfTheFullTensor) {
  auto src = MakeDummyWeightSource(1234);
  const std::string name = "model.layers.3.mlp.down_proj.weight";
  const std::vector<int64_t> shape = {57, 83};  // odd sizes: uneven shards
  auto full_t = src->Load(name, shape, ShardSpec::Full(), DType::kFloat32);
  ASSERT_TRUE(full_t.ok());
  const std::vector<float> full = ToVector(*full_t);
  for (int world : {2, 3}) {
    for (int rank = 0; rank < world; ++rank) {
      const Range rows = EvenSplit(shape[0], world, rank);
      auto r = src->Load(name, shape, ShardSpec::Rows(rows), DType::kFloat32);
      ASSERT_TRUE(r.ok());
      EXPECT_THAT(r->shape(), ElementsAre(rows.size(), 83));
      EXPECT_EQ(ToVector(*r), SubMatrix(full, 83, rows.begin, rows.end, 0, 83));
      const Range cols = EvenSplit(shape[1], world, rank);
      auto c = src->Load(name, shape, ShardSpec::Cols(cols), DType::kFloat32);
      ASSERT_TRUE(c.ok());
      EXPECT_THAT(c->shape(), ElementsAre(57, cols.size()));
      EXPECT_EQ(ToVector(*c), SubMatrix(full, 83, 0, 57, cols.begin, cols.end));
    }
  }
  // A 1-D row shard (column-parallel bias).
  auto bias = src->Load("b.bias", {10}, ShardSpec::Full(), DType::kFloat32);
  auto bias_shard = src->Load("b.bias", {10}, ShardSpec::Rows(Range{6, 10}), DType::kFloat32);
  ASSERT_TRUE(bias.ok() && bias_shard.ok());
  const std::vector<float> b = ToVector(*bias);
  EXPECT_EQ(ToVector(*bias_shard), std::vector<float>(b.begin() + 6, b.end()));
}

TEST(DummyWeightsTest, HalfTypesAreTheRoundedFloatValues) {
  auto src = MakeDummyWeightSource(3);
  auto f = src->Load("w", {16, 16}, ShardSpec::Full(), DType::kFloat32);
  auto bf = src->Load("w", {16, 16}, ShardSpec::Full(), DType::kBFloat16);
  auto h = src->Load("w", {16, 16}, ShardSpec::Full(), DType::kFloat16);
  ASSERT_TRUE(f.ok() && bf.ok() && h.ok());
  for (int64_t i = 0; i < f->numel(); ++i) {
    const float v = f->data_as<float>()[i];
    EXPECT_EQ(bf->data_as<uint16_t>()[i], FloatToBFloat16(v));
    EXPECT_EQ(h->data_as<uint16_t>()[i], FloatToHalf(v));
  }
  EXPECT_FALSE(src->Load("w", {4}, ShardSpec::Full(), DType::kInt64).ok());
  EXPECT_FALSE(src->Load("w", {4}, ShardSpec::Rows(Range{0, 5}), DType::kFloat32).ok());
}

struct Stats {
  double mean = 0, std = 0, min = 1e30, max = -1e30;
};
Stats StatsOf(const std::vector<float>& v) {
  Stats s;
  for (float x : v) {
    s.mean += x;
    s.min = std::min<double>(s.min, x);
    s.max = std::max<double>(s.max, x);
  }
  s.mean /= v.size();
  for (float x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / v.size());
  return s;
}

TEST(DummyWeightsTest, ScalesByKindOfTensor) {
  auto src = MakeDummyWeightSource(99);
  auto load = [&](const std::string& name, std::vector<int64_t> shape) {
    auto t = src->Load(name, shape, ShardSpec::Full(), DType::kFloat32);
    EXPECT_TRUE(t.ok()) << t.status();
    return StatsOf(ToVector(*t));
  };
  const Stats norm = load(LlamaWeightNames::InputLayerNorm(0), {576});
  EXPECT_NEAR(norm.mean, 1.0, 0.01);
  EXPECT_GE(norm.min, 0.95);
  EXPECT_LE(norm.max, 1.05);
  const Stats qnorm = load(LlamaWeightNames::QNorm(0), {128});
  EXPECT_GE(qnorm.min, 0.95);

  const Stats bias = load(LlamaWeightNames::QProjBias(0), {576});
  EXPECT_NEAR(bias.mean, 0.0, 0.005);
  EXPECT_LE(std::max(-bias.min, bias.max), 0.02);

  const Stats embed = load(LlamaWeightNames::EmbedTokens(), {1000, 64});
  EXPECT_NEAR(embed.mean, 0.0, 0.02);
  EXPECT_NEAR(embed.std, 1.0, 0.03);

  const Stats up = load(LlamaWeightNames::UpProj(0), {1536, 576});
  EXPECT_NEAR(up.mean, 0.0, 0.001);
  EXPECT_NEAR(up.std, 0.5 / std::sqrt(576.0), 0.01 * 0.5 / std::sqrt(576.0) * 5);
  const Stats down = load(LlamaWeightNames::DownProj(0), {576, 1536});
  EXPECT_NEAR(down.std, 0.5 / std::sqrt(1536.0), 0.05 * 0.5 / std::sqrt(1536.0));

  const Stats head = load(LlamaWeightNames::LmHead(), {1000, 256});
  EXPECT_NEAR(head.std, 1.0 / 16.0, 0.05 / 16.0);
}

}  // namespace
}  // namespace tessera
