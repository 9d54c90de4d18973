// Differential test against Hugging Face's own Rust `tokenizers` (the npm
// binding @anush008/tokenizers, installed as ../shared/clients/README.md
// shows): thousands of random strings (short and long, ASCII-heavy with
// special-token spellings, combining marks, CJK, emoji, odd spaces) and random
// id lists through the shared tokenizers and two tokenizer.json files built
// here (GPT-2-style byte level with NFKC; SentencePiece-style Metaspace with
// digits/punctuation splits and flagged added tokens). Encode ids and both
// decodes must be identical. Skips when node or the package is absent.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/hf_tokenizer.h"
#include "common/tokenizer/unicode.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/subprocess.h"
#include "tests/testing/tokenizers.h"

namespace tessera {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

// Reads {"tokenizer", "texts", "ids"} and writes {"encoded", "decoded"}.
constexpr char kNodeScript[] = R"JS(
const fs = require('fs');
const { Tokenizer } = require('@anush008/tokenizers');
(async () => {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const tok = Tokenizer.fromFile(job.tokenizer);
  const encoded = [], decoded = [];
  for (const t of job.texts) {
    encoded.push((await tok.encode(t, null, { addSpecialTokens: true })).getIds());
  }
  for (const ids of job.ids) decoded.push([await tok.decode(ids, true), await tok.decode(ids, false)]);
  fs.writeFileSync(process.argv[3], JSON.stringify({ encoded, decoded }));
})().catch((e) => { console.error(e); process.exit(1); });
)JS";

std::string RefClients() {
  const char* dir = std::getenv("TESSERA_REFCLIENTS");
  return dir != nullptr && dir[0] != '\0' ? dir : "/tmp/refclients";
}

bool HaveReference() {
  return fs::exists(RefClients() + "/node_modules/@anush008/tokenizers") &&
         testing::RunCommand("node --version > /dev/null 2>&1", 30).exit_code == 0;
}

std::string RandomText(std::mt19937_64& rng, int max_chars) {
  static const char* kPieces[] = {"the",
                                  " the",
                                  "ing",
                                  "  ",
                                  "\n",
                                  "\r\n",
                                  "\t",
                                  "'s",
                                  "'LL",
                                  "12345678",
                                  "<|im_start|>",
                                  "<|endoftext|>",
                                  "<s>",
                                  "</s>",
                                  "<unk>",
                                  "<think>",
                                  "<sep>",
                                  "foo",
                                  "\u2581",
                                  "\u00a0",
                                  "\u3000",
                                  "\u0085",
                                  "\u2028",
                                  "\u180e",
                                  "e\u0301",
                                  "\u00e9",
                                  "\u4e2d\u6587",
                                  "\U0001F600",
                                  "\U0001F44D\U0001F3FD",
                                  "\uFB01",
                                  "\u00bd",
                                  "\u216B",
                                  "\u0663",
                                  "\uFEFF",
                                  "\u200D"};
  static const uint32_t kRanges[][2] = {{0x20, 0x7E},       {0x80, 0x24F},     {0x300, 0x36F},
                                        {0x590, 0x6FF},     {0x3040, 0x30FF},  {0xAC00, 0xD7A3},
                                        {0x1F300, 0x1F6FF}, {0xE0020, 0xE007F}};
  std::string s;
  const int n = static_cast<int>(rng() % (max_chars + 1));
  for (int i = 0; i < n; ++i) {
    const uint64_t r = rng() % 100;
    if (r < 55) {
      s.push_back("abcdefghijklmnopqrstuvwxyz     ABC.,!?-0123456789"[rng() % 49]);
    } else if (r < 80) {
      s += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    } else {
      const auto& range = kRanges[rng() % (sizeof(kRanges) / sizeof(kRanges[0]))];
      hf::AppendUtf8(range[0] + static_cast<uint32_t>(rng() % (range[1] - range[0] + 1)), &s);
    }
  }
  return s;
}

Json Added(int id, const std::string& content, bool special, Json flags = Json::object()) {
  Json t = {{"id", id},        {"content", content}, {"single_word", false},  {"lstrip", false},
            {"rstrip", false}, {"special", special}, {"normalized", !special}};
  for (auto& [k, v] : flags.items()) t[k] = v;
  return t;
}

// GPT-2-style: NFKC, ByteLevel with its regex and a prefix space, a byte
// vocabulary with a few merges, ByteLevel decoder.
Json Gpt2Json() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[std::string(hf::ByteToChar(b))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"Ġ", "t"}, {"Ġt", "h"}, {"Ġth", "e"}, {"i", "n"}, {"in", "g"}, {"Ġ", "Ġ"}, {"1", "2"}};
  Json m = Json::array();
  for (const auto& [a, b] : merges) {
    vocab[a + b] = static_cast<int>(vocab.size());
    m.push_back(a + " " + b);
  }
  Json byte_level = {{"type", "ByteLevel"},
                     {"add_prefix_space", true},
                     {"trim_offsets", true},
                     {"use_regex", true}};
  return {{"normalizer", {{"type", "NFKC"}}},
          {"pre_tokenizer", byte_level},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
          {"added_tokens", {Added(static_cast<int>(vocab.size()), "<|endoftext|>", true)}}};
}

// SentencePiece-style: Metaspace (prepend "first", split), then digits and
// punctuation splits; byte fallback over a small vocabulary; added tokens with
// lstrip / rstrip / single_word; Metaspace + ByteFallback + Fuse decoder.
Json MetaspaceJson() {
  Json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = static_cast<int>(vocab.size());
  }
  for (const char* c : {"▁", "a", "b", "c", "e", "f", "h", "i", "n", "o", "s", "t", "1", "2"}) {
    vocab[c] = static_cast<int>(vocab.size());
  }
  Json merges = Json::array();
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"▁", "t"}, {"h", "e"}, {"▁t", "he"}, {"i", "n"}, {"1", "2"}, {"▁", "▁"}}) {
    vocab[a + b] = static_cast<int>(vocab.size());
    merges.push_back({a, b});
  }
  const int n = static_cast<int>(vocab.size());
  Json meta = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", true}};
  return {{"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {meta,
              {{"type", "Digits"}, {"individual_digits", false}},
              {{"type", "Split"},
               {"pattern", {{"Regex", "\\p{P}+"}}},
               {"behavior", "Isolated"},
               {"invert", false}}}}}},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", Json::parse(R"([{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                   {"Sequence": {"id": "A", "type_id": 0}},
                                   {"SpecialToken": {"id": "</s>", "type_id": 0}}])")},
            {"pair", Json::array()},
            {"special_tokens", Json::parse(R"({"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                           "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}})")}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders", {meta, {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", merges}}},
          {"added_tokens",
           {Added(0, "<unk>", true), Added(1, "<s>", true), Added(2, "</s>", true),
            Added(n, "<sep>", true, {{"lstrip", true}, {"rstrip", true}}),
            Added(n + 1, "foo", false, {{"single_word", true}})}}};
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, EncodeAndDecodeMatchHuggingFace) {
  if (!HaveReference()) {
    GTEST_SKIP() << "node or " << RefClients()
                 << "/node_modules/@anush008/tokenizers not found (install it as "
                    "../shared/clients/README.md shows, or set TESSERA_REFCLIENTS); skipping";
  }
  const fs::path work = fs::temp_directory_path() /
                        ("tessera_tokref_" + GetParam() + "_" + std::to_string(::getpid()));
  fs::create_directories(work);
  std::string tokenizer_json;
  if (GetParam() == "gpt2" || GetParam() == "metaspace") {
    tokenizer_json = (work / "tokenizer.json").string();
    std::ofstream(tokenizer_json) << (GetParam() == "gpt2" ? Gpt2Json() : MetaspaceJson()).dump();
  } else {
    TESSERA_REQUIRE_TOKENIZER(GetParam());
    tokenizer_json = testing::TokenizerDir(GetParam()) + "/tokenizer.json";
  }
  std::ifstream in(tokenizer_json);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto tok = hf::HfTokenizer::FromJson(text);
  ASSERT_TRUE(tok.ok()) << tok.status();

  std::mt19937_64 rng(std::hash<std::string>()(GetParam()));
  Json job = {{"tokenizer", tokenizer_json}, {"texts", Json::array()}, {"ids", Json::array()}};
  for (int i = 0; i < 3000; ++i) job["texts"].push_back(RandomText(rng, i % 10 == 0 ? 600 : 40));
  for (int i = 0; i < 2000; ++i) {
    std::vector<int32_t> ids(rng() % 24);
    for (int32_t& id : ids) {
      // Half the ids among the first 300 (bytes, specials), half anywhere.
      const int32_t limit = (*tok)->vocab_size();
      id = static_cast<int32_t>(rng() % (rng() % 2 == 0 ? std::min(300, limit) : limit));
    }
    job["ids"].push_back(ids);
  }
  std::ofstream(work / "job.json") << job.dump();
  std::ofstream(work / "ref.cjs") << kNodeScript;
  const auto run = testing::RunCommand(
      "env NODE_PATH=" + RefClients() + "/node_modules node " + (work / "ref.cjs").string() + " " +
          (work / "job.json").string() + " " + (work / "out.json").string(),
      300);
  ASSERT_EQ(run.exit_code, 0) << "node failed";
  std::ifstream out_file(work / "out.json");
  const Json ref = Json::parse(out_file);
  int diffs = 0;
  for (size_t i = 0; i < job["texts"].size() && diffs < 5; ++i) {
    const std::string t = job["texts"][i].get<std::string>();
    auto ids = (*tok)->Encode(t, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    const auto want = ref["encoded"][i].get<std::vector<int32_t>>();
    diffs += *ids != want;
    EXPECT_EQ(*ids, want) << "text " << Json(t).dump();
  }
  for (size_t i = 0; i < job["ids"].size() && diffs < 5; ++i) {
    const auto ids = job["ids"][i].get<std::vector<int32_t>>();
    auto skip = (*tok)->Decode(ids, true);
    auto keep = (*tok)->Decode(ids, false);
    ASSERT_TRUE(skip.ok()) << skip.status();
    ASSERT_TRUE(keep.ok()) << keep.status();
    diffs += *skip != ref["decoded"][i][0] || *keep != ref["decoded"][i][1];
    EXPECT_EQ(*skip, ref["decoded"][i][0].get<std::string>()) << Json(ids).dump();
    EXPECT_EQ(*keep, ref["decoded"][i][1].get<std::string>()) << Json(ids).dump();
  }
  fs::remove_all(work);
}

INSTANTIATE_TEST_SUITE_P(Random, ReferenceTest,
                         ::testing::Values("qwen3", "mistral", "stories260K", "gpt2", "metaspace"));

}  // namespace
}  // namespace tessera
