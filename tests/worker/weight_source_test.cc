// Tests of worker/model/weight_source.h: loading whole tensors and row/column
// shards from safetensors directories (single file, index-sharded, lone set)
// and their errors. The dummy weights: dummy_weights_test.cc.
#include "worker/model/weight_source.h"

#include <cmath>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/safetensors_test_util.h"
#include "worker/model/model_config.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::ExactValues;
using testing_util::FreshDir;
using testing_util::MakeTensor;
using testing_util::SafetensorsBytes;
using testing_util::SubMatrix;
using testing_util::ToVector;
using testing_util::WriteFile;

class WeightSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir("weight_source_test");
    WriteFile(dir_ + "/model.safetensors",
              SafetensorsBytes({MakeTensor("w32", "F32", {6, 5}, ExactValues(30, 1)),
                                MakeTensor("w16", "F16", {6, 5}, ExactValues(30, 2)),
                                MakeTensor("wbf", "BF16", {6, 5}, ExactValues(30, 3)),
                                MakeTensor("bias", "BF16", {7}, ExactValues(7, 4)),
                                MakeTensor("cube", "F32", {2, 3, 4}, ExactValues(24, 5)),
                                MakeTensor("int8", "I8", {2, 2}, {0, 0, 0, 0})}));
    auto src = OpenSafetensorsDir(dir_);
    ASSERT_TRUE(src.ok()) << src.status();
    src_ = std::move(*src);
  }

  std::string dir_;
  std::unique_ptr<WeightSource> src_;
};

TEST_F(WeightSourceTest, LoadsWholeTensorsOfEachDtype) {
  EXPECT_EQ(src_->Describe(), dir_);
  int salt = 1;
  for (const char* name : {"w32", "w16", "wbf"}) {
    ASSERT_TRUE(src_->Has(name));
    auto t = src_->Load(name, {6, 5}, ShardSpec::Full(), DType::kFloat32);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status();
    EXPECT_EQ(t->dtype(), DType::kFloat32);
    EXPECT_EQ(t->device(), Device::kCpu);
    EXPECT_THAT(t->shape(), ElementsAre(6, 5));
    EXPECT_EQ(ToVector(*t), ExactValues(30, salt++)) << name;
  }
}

TEST_F(WeightSourceTest, ConvertsToHalfTypes) {
  for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
    for (const char* name : {"w32", "w16", "wbf"}) {
      auto t = src_->Load(name, {6, 5}, ShardSpec::Full(), dtype);
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_EQ(t->dtype(), dtype);
      auto expected = src_->Load(name, {6, 5}, ShardSpec::Full(), DType::kFloat32);
      EXPECT_EQ(ToVector(*t), ToVector(*expected)) << name;  // values are exact in both
    }
  }
}

TEST_F(WeightSourceTest, RowAndColumnShardsAreSlicesOfTheWhole) {
  int salt = 1;
  for (const char* name : {"w32", "w16", "wbf"}) {
    const std::vector<float> full = ExactValues(30, salt++);
    for (int world : {1, 2, 3, 4}) {
      for (int rank = 0; rank < world; ++rank) {
        const Range rows = EvenSplit(6, world, rank);
        auto r = src_->Load(name, {6, 5}, ShardSpec::Rows(rows), DType::kFloat32);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_THAT(r->shape(), ElementsAre(rows.size(), 5));
        EXPECT_EQ(ToVector(*r), SubMatrix(full, 5, rows.begin, rows.end, 0, 5));

        const Range cols = EvenSplit(5, world, rank);
        auto c = src_->Load(name, {6, 5}, ShardSpec::Cols(cols), DType::kFloat32);
        ASSERT_TRUE(c.ok()) << c.status();
        EXPECT_THAT(c->shape(), ElementsAre(6, cols.size()));
        EXPECT_EQ(ToVector(*c), SubMatrix(full, 5, 0, 6, cols.begin, cols.end));
      }
    }
  }
}

TEST_F(WeightSourceTest, OneDimensionalRowShard) {
  auto b = src_->Load("bias", {7}, ShardSpec::Rows(EvenSplit(7, 2, 1)), DType::kFloat32);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(b->shape(), ElementsAre(3));
  const std::vector<float> full = ExactValues(7, 4);
  EXPECT_THAT(ToVector(*b), ElementsAre(full[4], full[5], full[6]));
}

TEST_F(WeightSourceTest, ColumnShardOfA3dTensorKeepsInnerDimensions) {
  auto t = src_->Load("cube", {2, 3, 4}, ShardSpec::Cols(Range{1, 3}), DType::kFloat32);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->shape(), ElementsAre(2, 2, 4));
  const std::vector<float> full = ExactValues(24, 5);
  std::vector<float> expected;
  for (int a = 0; a < 2; ++a) {
    for (int b = 1; b < 3; ++b) {
      for (int c = 0; c < 4; ++c) expected.push_back(full[a * 12 + b * 4 + c]);
    }
  }
  EXPECT_EQ(ToVector(*t), expected);
}

TEST_F(WeightSourceTest, WrongShapeNamesFileTensorAndBothShapes) {
  auto t = src_->Load("w32", {5, 6}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(),
              AllOf(HasSubstr(dir_ + "/model.safetensors"), HasSubstr("\"w32\""),
                    HasSubstr("has shape [6, 5]"), HasSubstr("expected [5, 6]")));
}

TEST_F(WeightSourceTest, MissingTensorIsNotFound) {
  EXPECT_FALSE(src_->Has("lm_head.weight"));
  auto t = src_->Load("lm_head.weight", {6, 5}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(),
              AllOf(HasSubstr("\"lm_head.weight\""), HasSubstr("model.safetensors")));
}

TEST_F(WeightSourceTest, UnsupportedDtypeIsClear) {
  auto t = src_->Load("int8", {2, 2}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(),
              AllOf(HasSubstr("\"int8\""), HasSubstr("I8"), HasSubstr("F32, F16, BF16")));

  auto as_int = src_->Load("w32", {6, 5}, ShardSpec::Full(), DType::kInt32);
  ASSERT_FALSE(as_int.ok());
  EXPECT_EQ(as_int.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(WeightSourceTest, BadShardIsRejected) {
  for (const ShardSpec& bad : {ShardSpec::Rows(Range{4, 7}), ShardSpec::Rows(Range{3, 2}),
                               ShardSpec::Cols(Range{-1, 2}), ShardSpec{2, 0, 1}}) {
    auto t = src_->Load("w32", {6, 5}, bad, DType::kFloat32);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr("\"w32\""));
  }
  EXPECT_FALSE(src_->Load("bias", {7}, ShardSpec::Cols(Range{0, 1}), DType::kFloat32).ok());
}

TEST(WeightSourceDirTest, ShardedWithIndex) {
  const std::string dir = FreshDir("weight_source_index");
  WriteFile(dir + "/model-00001-of-00002.safetensors",
            SafetensorsBytes({MakeTensor("a", "BF16", {4, 2}, ExactValues(8, 1)),
                              MakeTensor("b", "F32", {3}, ExactValues(3, 2))}));
  WriteFile(dir + "/model-00002-of-00002.safetensors",
            SafetensorsBytes({MakeTensor("c", "F16", {2, 4}, ExactValues(8, 3))}));
  WriteFile(dir + "/model.safetensors.index.json", R"({"metadata": {"total_size": 52},
      "weight_map": {"a": "model-00001-of-00002.safetensors",
                     "b": "model-00001-of-00002.safetensors",
                     "c": "model-00002-of-00002.safetensors"}})");
  auto src = OpenSafetensorsDir(dir);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_TRUE((*src)->Has("a") && (*src)->Has("b") && (*src)->Has("c"));
  auto a = (*src)->Load("a", {4, 2}, ShardSpec::Rows(Range{2, 4}), DType::kFloat32);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(ToVector(*a), SubMatrix(ExactValues(8, 1), 2, 2, 4, 0, 2));
  auto c = (*src)->Load("c", {2, 4}, ShardSpec::Cols(Range{1, 3}), DType::kFloat32);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(ToVector(*c), SubMatrix(ExactValues(8, 3), 4, 0, 2, 1, 3));

  auto missing = (*src)->Load("d", {1}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              AllOf(HasSubstr("\"d\""), HasSubstr("model-00001-of-00002.safetensors"),
                    HasSubstr("model-00002-of-00002.safetensors")));
}

TEST(WeightSourceDirTest, IndexErrors) {
  const std::string dir = FreshDir("weight_source_bad_index");
  WriteFile(dir + "/part1.safetensors",
            SafetensorsBytes({MakeTensor("a", "F32", {2}, ExactValues(2))}));

  // The index places a tensor in a file that does not have it.
  WriteFile(dir + "/model.safetensors.index.json",
            R"({"weight_map": {"a": "part1.safetensors", "z": "part1.safetensors"}})");
  auto src = OpenSafetensorsDir(dir);
  ASSERT_FALSE(src.ok());
  EXPECT_THAT(src.status().message(), AllOf(HasSubstr("\"z\""), HasSubstr("part1.safetensors")));

  // The index names a file that is absent.
  WriteFile(dir + "/model.safetensors.index.json", R"({"weight_map": {"a": "part9.safetensors"}})");
  src = OpenSafetensorsDir(dir);
  ASSERT_FALSE(src.ok());
  EXPECT_THAT(src.status().message(), HasSubstr("part9.safetensors"));

  // Not JSON; no weight_map; a path outside the directory.
  for (const char* index :
       {"{not json", R"({"metadata": {}})", R"({"weight_map": {"a": "../part1.safetensors"}})"}) {
    WriteFile(dir + "/model.safetensors.index.json", index);
    src = OpenSafetensorsDir(dir);
    ASSERT_FALSE(src.ok()) << index;
    EXPECT_THAT(src.status().message(), HasSubstr("model.safetensors.index.json")) << index;
  }
}

TEST(WeightSourceDirTest, LoneSetOfFiles) {
  const std::string dir = FreshDir("weight_source_lone");
  WriteFile(dir + "/first.safetensors",
            SafetensorsBytes({MakeTensor("a", "F32", {2}, ExactValues(2, 1))}));
  WriteFile(dir + "/second.safetensors",
            SafetensorsBytes({MakeTensor("b", "F32", {3}, ExactValues(3, 2))}));
  auto src = OpenSafetensorsDir(dir);
  ASSERT_TRUE(src.ok()) << src.status();
  auto b = (*src)->Load("b", {3}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(ToVector(*b), ExactValues(3, 2));

  // The same tensor in two files is ambiguous.
  WriteFile(dir + "/third.safetensors",
            SafetensorsBytes({MakeTensor("a", "F32", {2}, ExactValues(2, 3))}));
  src = OpenSafetensorsDir(dir);
  ASSERT_FALSE(src.ok());
  EXPECT_THAT(src.status().message(),
              AllOf(HasSubstr("\"a\""), HasSubstr("first.safetensors"), HasSubstr("third")));
}

TEST(WeightSourceDirTest, CorruptFileOrNoFiles) {
  const std::string dir = FreshDir("weight_source_corrupt");
  auto empty = OpenSafetensorsDir(dir);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr(dir));

  EXPECT_EQ(OpenSafetensorsDir(dir + "/absent").status().code(), absl::StatusCode::kNotFound);

  const std::string good = SafetensorsBytes({MakeTensor("a", "F32", {8}, ExactValues(8))});
  WriteFile(dir + "/model.safetensors", good.substr(0, good.size() - 4));
  auto src = OpenSafetensorsDir(dir);
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(src.status().message(),
              AllOf(HasSubstr(dir + "/model.safetensors"), HasSubstr("\"a\"")));
}

TEST(WeightSourceRealTest, Stories260K) {
  const std::string dir = std::string(TESSERA_SHARED_DIR) + "/models/stories260K";
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    GTEST_SKIP() << "test data " << dir << " is absent";
  }
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  auto src = OpenSafetensorsDir(dir);
  ASSERT_TRUE(src.ok()) << src.status();
  const int64_t h = config->hidden_size;

  auto embed = (*src)->Load(LlamaWeightNames::EmbedTokens(), {config->vocab_size, h},
                            ShardSpec::Full(), DType::kFloat32);
  ASSERT_TRUE(embed.ok()) << embed.status();
  double sum_sq = 0;
  for (float v : ToVector(*embed)) {
    ASSERT_TRUE(std::isfinite(v));
    sum_sq += double{v} * v;
  }
  const double rms = std::sqrt(sum_sq / embed->numel());
  EXPECT_GT(rms, 1e-3);
  EXPECT_LT(rms, 10.0);

  // RMSNorm gains of a trained model are positive on average.
  auto norm = (*src)->Load(LlamaWeightNames::FinalNorm(), {h}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_TRUE(norm.ok()) << norm.status();
  double mean = 0;
  for (float v : ToVector(*norm)) mean += v / h;
  EXPECT_GT(mean, 0.0);

  // Every weight of the model loads with the shape the config implies, and the
  // TP=2 shards of a q projection are its halves.
  for (int i = 0; i < config->num_hidden_layers; ++i) {
    for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {LlamaWeightNames::QProj(i), {config->q_size(), h}},
             {LlamaWeightNames::KProj(i), {config->kv_size(), h}},
             {LlamaWeightNames::VProj(i), {config->kv_size(), h}},
             {LlamaWeightNames::OProj(i), {h, config->q_size()}},
             {LlamaWeightNames::GateProj(i), {config->intermediate_size, h}},
             {LlamaWeightNames::UpProj(i), {config->intermediate_size, h}},
             {LlamaWeightNames::DownProj(i), {h, config->intermediate_size}},
             {LlamaWeightNames::InputLayerNorm(i), {h}},
             {LlamaWeightNames::PostAttentionLayerNorm(i), {h}}}) {
      EXPECT_TRUE((*src)->Load(name, shape, ShardSpec::Full(), DType::kFloat32).ok()) << name;
    }
  }
  const std::string q = LlamaWeightNames::QProj(2);
  auto q_full = (*src)->Load(q, {config->q_size(), h}, ShardSpec::Full(), DType::kFloat32);
  ASSERT_TRUE(q_full.ok());
  const std::vector<float> full = ToVector(*q_full);
  for (int rank = 0; rank < 2; ++rank) {
    auto part = PartitionForRank(*config, 2, rank);
    ASSERT_TRUE(part.ok());
    const Range rows{part->q_heads.begin * config->head_dim, part->q_heads.end * config->head_dim};
    auto shard = (*src)->Load(q, {config->q_size(), h}, ShardSpec::Rows(rows), DType::kFloat32);
    ASSERT_TRUE(shard.ok());
    EXPECT_EQ(ToVector(*shard), SubMatrix(full, h, rows.begin, rows.end, 0, h));
  }
}

}  // namespace
}  // namespace tessera
