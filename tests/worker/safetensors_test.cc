// Tests of worker/model/safetensors.h: parsing, validation of corrupt files,
// and the real stories260K checkpoint.
#include "worker/model/safetensors.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/safetensors_test_util.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::ExactValues;
using testing_util::FileBytes;
using testing_util::FreshDir;
using testing_util::MakeTensor;
using testing_util::SafetensorsBytes;
using testing_util::TensorBytes;
using testing_util::WriteFile;

std::vector<TensorBytes> SampleTensors() {
  return {MakeTensor("a.weight", "F32", {4, 3}, ExactValues(12, 1)),
          MakeTensor("b.weight", "F16", {2, 5}, ExactValues(10, 2)),
          MakeTensor("c.bias", "BF16", {6}, ExactValues(6, 3)),
          MakeTensor("empty", "F32", {0, 4}, {})};
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = FreshDir("safetensors_test"); }

  // Writes `bytes` to a file and opens it.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(const std::string& bytes) {
    path_ = dir_ + "/model.safetensors";
    WriteFile(path_, bytes);
    return SafetensorsFile::Open(path_);
  }

  // Expects Open of `bytes` to fail naming the file and every one of `parts`.
  void ExpectCorrupt(const std::string& bytes, const std::vector<std::string>& parts) {
    auto file = OpenBytes(bytes);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
    EXPECT_THAT(file.status().message(), HasSubstr(path_));
    for (const std::string& part : parts) EXPECT_THAT(file.status().message(), HasSubstr(part));
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SafetensorsTest, ReadsEntries) {
  const std::vector<TensorBytes> tensors = SampleTensors();
  auto file = OpenBytes(SafetensorsBytes(tensors));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path_);
  EXPECT_THAT((*file)->Names(), ElementsAre("a.weight", "b.weight", "c.bias", "empty"));
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_EQ((*file)->Find("missing"), nullptr);
  EXPECT_EQ((*file)->Find("__metadata__"), nullptr);

  const SafetensorsFile::Entry* a = (*file)->Find("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kFloat32);
  EXPECT_EQ(a->dtype_name, "F32");
  EXPECT_THAT(a->shape, ElementsAre(4, 3));
  EXPECT_EQ(a->nbytes, 48u);
  EXPECT_EQ(std::memcmp(a->data, tensors[0].bytes.data(), 48), 0);

  const SafetensorsFile::Entry* b = (*file)->Find("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kFloat16);
  EXPECT_EQ(b->nbytes, 20u);
  EXPECT_EQ(std::memcmp(b->data, tensors[1].bytes.data(), 20), 0);
  for (int i = 0; i < 10; ++i) {
    uint16_t h;
    std::memcpy(&h, b->data + 2 * i, 2);
    EXPECT_EQ(HalfToFloat(h), ExactValues(10, 2)[i]);
  }

  const SafetensorsFile::Entry* c = (*file)->Find("c.bias");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, DType::kBFloat16);
  EXPECT_THAT(c->shape, ElementsAre(6));
  uint16_t bf;
  std::memcpy(&bf, c->data + 2, 2);
  EXPECT_EQ(BFloat16ToFloat(bf), ExactValues(6, 3)[1]);

  const SafetensorsFile::Entry* e = (*file)->Find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->nbytes, 0u);
}

TEST_F(SafetensorsTest, OtherDtypesAreIndexedWithoutATesseraDType) {
  auto file = OpenBytes(SafetensorsBytes({MakeTensor("q", "I8", {2, 2}, {1, 2, 3, 4})}));
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsFile::Entry* q = (*file)->Find("q");
  ASSERT_NE(q, nullptr);
  EXPECT_FALSE(q->dtype.has_value());
  EXPECT_EQ(q->dtype_name, "I8");
  EXPECT_EQ(q->nbytes, 4u);
  EXPECT_EQ(SafetensorsDTypeSize("BF16"), 2u);
  EXPECT_EQ(SafetensorsDTypeSize("F64"), 8u);
  EXPECT_EQ(SafetensorsDTypeSize("Q4"), std::nullopt);
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open(dir_ + "/nope.safetensors");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr("nope.safetensors"));
}

TEST_F(SafetensorsTest, ShorterThanHeaderLength) {
  ExpectCorrupt("", {"0 bytes"});
  ExpectCorrupt(std::string("\x10\x00\x00", 3), {"3 bytes"});
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFile) {
  ExpectCorrupt(FileBytes("{}", "", /*declared_len=*/1 << 20), {"header length"});
  ExpectCorrupt(FileBytes("{}", "", /*declared_len=*/int64_t{1} << 62), {"header length"});
}

TEST_F(SafetensorsTest, TruncatedHeader) {
  const std::string bytes = SafetensorsBytes(SampleTensors());
  // Cut inside the JSON header: the declared length now runs past the end.
  ExpectCorrupt(bytes.substr(0, 8 + 20), {"header length"});
}

TEST_F(SafetensorsTest, TruncatedData) {
  const std::string bytes = SafetensorsBytes(SampleTensors());
  // Cut the last data bytes: c.bias (the last tensor with data) now runs past the end.
  ExpectCorrupt(bytes.substr(0, bytes.size() - 3), {"\"c.bias\"", "truncated"});
}

TEST_F(SafetensorsTest, BadJson) {
  ExpectCorrupt(FileBytes(R"({"a": {"dtype": "F32",)", ""), {"not valid JSON"});
  ExpectCorrupt(FileBytes("[1, 2, 3]", ""), {"not a JSON object"});
}

TEST_F(SafetensorsTest, BadEntries) {
  const std::string data(16, '\0');
  ExpectCorrupt(
      FileBytes(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 32]}})", data),
      {"\"w\"", "run past the end"});
  ExpectCorrupt(FileBytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", data),
                {"\"w\"", "end before"});
  ExpectCorrupt(
      FileBytes(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", data),
      {"\"w\"", "16 bytes", "need 12"});
  ExpectCorrupt(
      FileBytes(R"({"w": {"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]}})", data),
      {"\"w\"", "dimension"});
  ExpectCorrupt(
      FileBytes(R"({"w": {"dtype": "Q4_K", "shape": [4], "data_offsets": [0, 16]}})", data),
      {"\"w\"", "unknown dtype \"Q4_K\""});
  ExpectCorrupt(FileBytes(R"({"w": {"shape": [4], "data_offsets": [0, 16]}})", data),
                {"\"w\"", "dtype"});
  ExpectCorrupt(FileBytes(R"({"w": {"dtype": "F32", "data_offsets": [0, 16]}})", data),
                {"\"w\"", "shape"});
  ExpectCorrupt(FileBytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}})", data),
                {"\"w\"", "data_offsets"});
  ExpectCorrupt(
      FileBytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [-4, 12]}})", data),
      {"\"w\"", "data_offsets"});
  ExpectCorrupt(FileBytes(R"({"w": [1, 2]})", data), {"\"w\""});
  // Element count overflow: 2^62 * 2^62 elements.
  ExpectCorrupt(
      FileBytes(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904],
                 "data_offsets": [0, 16]}})",
                data),
      {"\"w\"", "more elements"});
}

TEST_F(SafetensorsTest, OverlappingTensorsAreTolerated) {
  const std::string data(16, '\0');
  auto file = OpenBytes(FileBytes(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                  data));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("b")->data, (*file)->Find("a")->data + 4);
}

// Every truncation and many random corruptions of a valid file must give
// either a valid index whose entries lie inside the file, or an error; never a
// crash.
TEST_F(SafetensorsTest, NeverCrashesOnCorruptFiles) {
  const std::string good = SafetensorsBytes(SampleTensors());
  auto check = [&](const std::string& bytes) {
    auto file = OpenBytes(bytes);
    if (!file.ok()) {
      EXPECT_THAT(file.status().message(), HasSubstr(path_));
      return;
    }
    for (const std::string& name : (*file)->Names()) {
      const SafetensorsFile::Entry* e = (*file)->Find(name);
      volatile uint8_t sink = 0;
      for (size_t i = 0; i < e->nbytes; ++i) sink = sink + e->data[i];  // touches every byte
    }
  };
  for (size_t len = 0; len < good.size(); ++len) check(good.substr(0, len));
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes = good;
    const int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    }
    check(bytes);
  }
}

TEST(SafetensorsRealTest, Stories260K) {
  const std::string path =
      std::string(TESSERA_SHARED_DIR) + "/models/stories260K/model.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "test data " << path << " is absent";
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Names().size(), 5u * 9 + 2);  // 9 per layer + embeddings + final norm
  const SafetensorsFile::Entry* embed = (*file)->Find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, DType::kFloat32);
  EXPECT_THAT(embed->shape, ElementsAre(512, 64));
  EXPECT_EQ(embed->nbytes, 512u * 64 * 4);
  const SafetensorsFile::Entry* k = (*file)->Find("model.layers.4.self_attn.k_proj.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_THAT(k->shape, ElementsAre(32, 64));           // 4 KV heads * head_dim 8
  EXPECT_EQ((*file)->Find("lm_head.weight"), nullptr);  // tied
}

}  // namespace
}  // namespace tessera
