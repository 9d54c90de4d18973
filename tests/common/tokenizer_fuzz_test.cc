// Randomized robustness of the tokenizers: a few hundred thousand random byte
// strings, random Unicode strings and random id sequences through Encode,
// Decode and IncrementalDecoder. Nothing may crash, every decode is valid
// UTF-8, streams concatenate to the one-shot decode, and text round-trips
// where Hugging Face's pipeline is lossless (Qwen3: up to NFC; Mistral: text
// without "▁"; both without added-token spellings). Deterministic seeds; each tokenizer's
// part stops early at a time budget so the test stays bounded on slow builds.
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "common/tokenizer.h"
#include "common/tokenizer/unicode.h"
#include "gtest/gtest.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/tokenizers.h"

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kInputsPerTokenizer = 80000;
constexpr auto kBudget = std::chrono::seconds(25);

bool ValidUtf8(const std::string& s) { return !hf::FindInvalidUtf8(s).has_value(); }

// Code points drawn from ranges that stress tokenizers: ASCII, Latin-1 and
// its controls (U+0085, NBSP), combining marks, Greek/Cyrillic, Arabic/Hebrew
// and bidi marks, CJK, Hangul, ZWJ/ZWSP/BOM, U+2028, private use, emoji and
// tags, noncharacters, and the SentencePiece marker.
uint32_t RandomCodePoint(std::mt19937_64& rng) {
  static constexpr uint32_t kRanges[][2] = {
      {0x20, 0x7E},       {0x00, 0x1F},       {0x80, 0xFF},     {0x300, 0x36F},
      {0x370, 0x4FF},     {0x590, 0x6FF},     {0x200B, 0x200F}, {0x2028, 0x202E},
      {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},   {0xFEFF, 0xFEFF}, {0xE000, 0xE0FF},
      {0x1F300, 0x1F64F}, {0xE0020, 0xE007F}, {0xFFFE, 0xFFFF}, {0x2581, 0x2581},
      {0x1F3FB, 0x1F3FF}, {0x30, 0x39}};
  constexpr size_t kN = sizeof(kRanges) / sizeof(kRanges[0]);
  // ASCII letters and spaces most of the time, so words and merges happen.
  const size_t pick = rng() % (kN + 6);
  const auto& r = pick >= kN ? kRanges[pick % 2 == 0 ? 0 : kN - 1] : kRanges[pick];
  return r[0] + static_cast<uint32_t>(rng() % (r[1] - r[0] + 1));
}

std::string RandomUnicode(std::mt19937_64& rng) {
  static const char* kFragments[] = {
      "<|im_start|>", "<|endoftext|>", "<s>", "</s>",  "<unk>", "<think>", " ", "  ",
      "\n",           "\r\n",          "'s",  "12345", "<|",    "|>"};
  std::string s;
  const int n = static_cast<int>(rng() % 40);
  for (int i = 0; i < n; ++i) {
    if (rng() % 10 == 0) {
      s += kFragments[rng() % (sizeof(kFragments) / sizeof(kFragments[0]))];
    } else {
      hf::AppendUtf8(RandomCodePoint(rng), &s);
    }
  }
  return s;
}

std::string RandomBytes(std::mt19937_64& rng) {
  std::string s(rng() % 48, '\0');
  for (char& c : s) c = static_cast<char>(rng() % 256);
  return s;
}

// Streams `ids` through an IncrementalDecoder in random chunks; checks each
// piece is valid UTF-8 and returns the concatenation.
std::string StreamRandomly(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip,
                           std::mt19937_64& rng) {
  IncrementalDecoder dec(&tok, skip);
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    const size_t n = std::min<size_t>(ids.size() - i, 1 + rng() % 3);
    auto piece = dec.Append(std::span<const int32_t>(ids.data() + i, n));
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (piece.ok()) {
      EXPECT_TRUE(ValidUtf8(*piece));
      out += *piece;
    }
    i += n;
  }
  const std::string rest = dec.Flush();
  EXPECT_TRUE(ValidUtf8(rest));
  return out + rest;
}

struct Counts {
  int inputs = 0;
  int failures = 0;
};

void Fuzz(const std::string& name, const Tokenizer& tok, bool hf_rules, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Clock::time_point deadline = Clock::now() + kBudget;
  Counts c;
  for (; c.inputs < kInputsPerTokenizer && c.failures < 5; ++c.inputs) {
    if (c.inputs % 1024 == 0 && Clock::now() > deadline) break;
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 3) {  // random ids
      std::vector<int32_t> ids(rng() % 24);
      for (int32_t& id : ids) id = static_cast<int32_t>(rng() % tok.vocab_size());
      const bool skip = rng() % 2 == 0;
      auto text = tok.Decode(ids, skip);
      ASSERT_TRUE(text.ok()) << text.status();
      if (!ValidUtf8(*text)) ++c.failures;
      EXPECT_TRUE(ValidUtf8(*text)) << name;
      EXPECT_TRUE(ValidUtf8(StreamRandomly(tok, ids, skip, rng)));
      continue;
    }
    const std::string input = kind == 0 ? RandomBytes(rng) : RandomUnicode(rng);
    auto ids = tok.Encode(input, rng() % 2 == 0);
    if (hf_rules && !ValidUtf8(input)) {
      EXPECT_FALSE(ids.ok()) << name << ": invalid UTF-8 accepted";
      if (!ids.ok()) EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ASSERT_TRUE(ids.ok()) << name << ": " << ids.status();
    for (int32_t id : *ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
    for (const bool skip : {true, false}) {
      auto text = tok.Decode(*ids, skip);
      ASSERT_TRUE(text.ok()) << text.status();
      EXPECT_TRUE(ValidUtf8(*text));
      const std::string streamed = StreamRandomly(tok, *ids, skip, rng);
      if (streamed != *text) ++c.failures;
      EXPECT_EQ(streamed, *text) << name << " skip=" << skip << " input "
                                 << ::testing::PrintToString(input);
    }
    // Byte-level: lossless up to NFC (of each part between added tokens, so
    // only for text without their spellings).
    if (name == "qwen3" && input.find('<') == std::string::npos) {
      auto text = tok.Decode(*ids, /*skip_special=*/false);
      auto nfc = hf::NormalizeUnicode(input, hf::NormalForm::kNFC);
      ASSERT_TRUE(nfc.ok());
      if (*text != *nfc) ++c.failures;
      EXPECT_EQ(*text, *nfc) << ::testing::PrintToString(input);
    }
    if (name == "mistral" && input.find("\xE2\x96\x81") == std::string::npos &&
        input.find('<') == std::string::npos) {
      auto plain = tok.Encode(input, false);
      ASSERT_TRUE(plain.ok());
      auto text = tok.Decode(*plain, /*skip_special=*/true);
      if (*text != input) ++c.failures;
      EXPECT_EQ(*text, input) << ::testing::PrintToString(input);
    }
  }
  // The budget is generous: a run that stops early on a normal build means
  // the tokenizer got much slower. (Under a sanitizer the budget alone bounds the run.)
  if (!tessera::testing::kSanitizerBuild) {
    EXPECT_GE(c.inputs, kInputsPerTokenizer / 4) << name << " ran out of time";
  }
  std::printf("%s: %d random inputs\n", name.c_str(), c.inputs);
}

TEST(TokenizerFuzzTest, ByteTokenizer) {
  auto tok = MakeByteTokenizer(512);
  Fuzz("bytes", *tok, /*hf_rules=*/false, 1);
}

class HfFuzzTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFuzzTest, RandomInputsNeverBreakAnything) {
  TESSERA_REQUIRE_TOKENIZER(GetParam());
  Fuzz(GetParam(), *testing::SharedTokenizer(GetParam()).tokenizer, /*hf_rules=*/true,
       std::hash<std::string>()(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Shared, HfFuzzTest, ::testing::Values("qwen3", "mistral", "stories260K"));

}  // namespace
}  // namespace tessera
