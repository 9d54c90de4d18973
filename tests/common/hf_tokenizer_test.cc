// Unit tests of the Hugging Face tokenizer on small tokenizer.json files built
// here: the components the shared goldens do not cover (Llama-3-style digit
// groups with ignore_merges, Metaspace, added-token flags, unk/byte fallback,
// merges as pairs), the loader's config handling, errors for unsupported
// components, invalid input and concurrent use. Expected ids were checked
// against Hugging Face's Rust `tokenizers` 0.22 (npm @anush008/tokenizers).
#include "common/tokenizer/hf_tokenizer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/tokenizer.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/tokenizers.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

Json AddedToken(int id, const std::string& content, bool special, Json flags = Json::object()) {
  Json t = {{"id", id},        {"content", content},     {"single_word", false}, {"lstrip", false},
            {"rstrip", false}, {"normalized", !special}, {"special", special}};
  for (auto& [k, v] : flags.items()) t[k] = v;
  return t;
}

// A Llama-3-shaped byte-level tokenizer: bytes are ids 0..255 (in byte
// order), then "123" (256), "45" (257), "Ġw" (258), "Ġwo" (259), "hello"
// (260); merges 4+5, Ġ+w, Ġw+o; BOS <|begin_of_text|> = 261, <|eot_id|> = 262.
Json Llama3Json() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[std::string(hf::ByteToChar(b))] = b;
  vocab["123"] = 256;
  vocab["45"] = 257;
  vocab["Ġw"] = 258;
  vocab["Ġwo"] = 259;
  vocab["hello"] = 260;
  Json bos = {{"id", "<|begin_of_text|>"}, {"type_id", 0}};
  return {{"version", "1.0"},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"},
               {"pattern", {{"Regex", kLlama3Pattern}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              {{"type", "ByteLevel"},
               {"add_prefix_space", false},
               {"trim_offsets", true},
               {"use_regex", false}}}}}},
          {"post_processor",
           {{"type", "Sequence"},
            {"processors",
             {{{"type", "ByteLevel"}, {"trim_offsets", false}},
              {{"type", "TemplateProcessing"},
               {"single", {{{"SpecialToken", bos}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
               {"pair", Json::array()},
               {"special_tokens",
                {{"<|begin_of_text|>",
                  {{"id", "<|begin_of_text|>"},
                   {"ids", {261}},
                   {"tokens", {"<|begin_of_text|>"}}}}}}}}}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", true},
            {"vocab", vocab},
            {"merges", Json::parse(R"([["4", "5"], ["Ġ", "w"], ["Ġw", "o"]])")}}},
          {"added_tokens",
           {AddedToken(261, "<|begin_of_text|>", true), AddedToken(262, "<|eot_id|>", true)}}};
}

std::unique_ptr<hf::HfTokenizer> Build(const Json& j) {
  auto t = hf::HfTokenizer::FromJson(j.dump());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::vector<int32_t> Ids(const Tokenizer& t, const std::string& text, bool special = false) {
  auto ids = t.Encode(text, special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

std::string Text(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  auto text = t.Decode(ids, skip);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(HfTokenizerTest, Llama3DigitGroupsIgnoreMergesAndTemplate) {
  auto tok = Build(Llama3Json());
  ASSERT_NE(tok, nullptr);
  const std::string text = "hello 12345678 wow<|eot_id|>";
  // "hello" is whole (ignore_merges); "123" whole; "456" = 45 + 6; " wow" =
  // Ġwo + w; the special token is matched in the text.
  EXPECT_THAT(Ids(*tok, text), ElementsAre(260, 32, 256, 257, '6', '7', '8', 259, 'w', 262));
  const std::vector<int32_t> with_bos = Ids(*tok, text, /*special=*/true);
  ASSERT_EQ(with_bos.size(), 11u);
  EXPECT_EQ(with_bos[0], 261);
  EXPECT_EQ(Text(*tok, with_bos, /*skip=*/true), "hello 12345678 wow");
  EXPECT_EQ(Text(*tok, with_bos, /*skip=*/false), "<|begin_of_text|>" + text);
  EXPECT_EQ(tok->vocab_size(), 263);
  EXPECT_EQ(tok->TokenToId("<|eot_id|>"), 262);
  EXPECT_EQ(tok->TokenToId("Ġwo"), 259);
  EXPECT_FALSE(tok->TokenToId("nope").has_value());
}

TEST(HfTokenizerTest, MergesAsStringsEqualMergesAsPairs) {
  Json j = Llama3Json();
  j["model"]["merges"] = {"4 5", "Ġ w", "Ġw o"};
  j["model"]["ignore_merges"] = false;
  auto tok = Build(j);
  ASSERT_NE(tok, nullptr);
  // Without ignore_merges "hello" is spelled out in bytes (no merges build it).
  EXPECT_THAT(Ids(*tok, "hello wow"), ElementsAre('h', 'e', 'l', 'l', 'o', 259, 'w'));
}

TEST(HfTokenizerTest, InvalidUtf8InputIsRejected) {
  auto tok = Build(Llama3Json());
  ASSERT_NE(tok, nullptr);
  auto ids = tok->Encode("ok\xff", false);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("byte 2"));
  auto bad_id = tok->Decode(std::vector<int32_t>{263}, false);
  EXPECT_EQ(bad_id.status().code(), absl::StatusCode::kInvalidArgument);
}

// A SentencePiece-shaped tokenizer with a Metaspace pre-tokenizer/decoder,
// byte fallback for some bytes only, and an unknown token.
Json MetaspaceJson(bool fuse_unk) {
  Json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"<0xC3>", 3}, {"<0xA9>", 4},
                {"▁", 5},     {"h", 6},   {"i", 7},    {"▁h", 8},     {"▁hi", 9}};
  Json meta = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", true}};
  return {
      {"normalizer", nullptr},
      {"pre_tokenizer", meta},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", {meta, {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"fuse_unk", fuse_unk},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", {"▁ h", "▁h i"}}}},
      {"added_tokens",
       {AddedToken(0, "<unk>", true), AddedToken(1, "<s>", true), AddedToken(2, "</s>", true)}}};
}

TEST(HfTokenizerTest, MetaspaceByteFallbackAndUnknowns) {
  auto tok = Build(MetaspaceJson(/*fuse_unk=*/true));
  ASSERT_NE(tok, nullptr);
  // "hi hé": ▁hi ▁h (é = C3 A9 by byte fallback); "xy" has no bytes: one
  // fused <unk>.
  EXPECT_THAT(Ids(*tok, "hi hé"), ElementsAre(9, 8, 3, 4));
  EXPECT_THAT(Ids(*tok, "hixy"), ElementsAre(9, 0));
  EXPECT_EQ(Text(*tok, {9, 8, 3, 4}, true), "hi hé");
  // "first": only the piece at the start of the input gets the ▁ prepended.
  EXPECT_THAT(Ids(*tok, "hi</s>hi"), ElementsAre(9, 2, 6, 7));
  auto unfused = Build(MetaspaceJson(/*fuse_unk=*/false));
  ASSERT_NE(unfused, nullptr);
  EXPECT_THAT(Ids(*unfused, "hixy"), ElementsAre(9, 0, 0));
}

TEST(HfTokenizerTest, AddedTokenFlags) {
  Json j = Llama3Json();
  j["added_tokens"].push_back(
      AddedToken(263, "<mask>", true, {{"lstrip", true}, {"rstrip", true}}));
  j["added_tokens"].push_back(AddedToken(264, "wow", false, {{"single_word", true}}));
  j["added_tokens"].push_back(AddedToken(265, "<|eot_id|>x", false, {{"normalized", false}}));
  auto tok = Build(j);
  ASSERT_NE(tok, nullptr);
  // lstrip/rstrip: the spaces around <mask> are part of it.
  EXPECT_THAT(Ids(*tok, "hello  <mask>  hello"), ElementsAre(260, 263, 260));
  // single_word: "wow" alone is the added token, inside "wowhello" it is not.
  EXPECT_THAT(Ids(*tok, "wow"), ElementsAre(264));
  EXPECT_THAT(Ids(*tok, "wowhello"), ElementsAre('w', 'o', 'w', 'h', 'e', 'l', 'l', 'o'));
  // Longest first among the tokens matched on the raw text.
  EXPECT_THAT(Ids(*tok, "<|eot_id|>x<|eot_id|>"), ElementsAre(265, 262));
  EXPECT_FALSE(tok->IsSpecial(264));
  EXPECT_TRUE(tok->IsSpecial(263));
  EXPECT_EQ(Text(*tok, {264, 263, 262}, /*skip=*/true), "wow");
}

struct Unsupported {
  std::string pointer;  // JSON pointer of the replaced component
  Json component;
  std::string path;  // expected in the message
  std::string type;
};

TEST(HfTokenizerTest, UnsupportedComponentsFailAtLoadNamingPathAndType) {
  const std::vector<Unsupported> cases = {
      {"/model", Json::parse(R"({"type": "WordPiece", "vocab": {}})"), "tokenizer.json.model",
       "WordPiece"},
      {"/model", Json::parse(R"({"type": "Unigram", "vocab": []})"), "tokenizer.json.model",
       "Unigram"},
      {"/normalizer",
       Json::parse(
           R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})"),
       "tokenizer.json.normalizer.normalizers[1]", "Lowercase"},
      {"/pre_tokenizer", Json::parse(R"({"type": "Whitespace"})"), "tokenizer.json.pre_tokenizer",
       "Whitespace"},
      {"/decoder", Json::parse(R"({"type": "WordPiece"})"), "tokenizer.json.decoder", "WordPiece"},
      {"/post_processor", Json::parse(R"({"type": "Foo"})"), "tokenizer.json.post_processor",
       "Foo"},
  };
  for (const Unsupported& c : cases) {
    Json j = Llama3Json();
    j[Json::json_pointer(c.pointer)] = c.component;
    auto t = hf::HfTokenizer::FromJson(j.dump());
    ASSERT_FALSE(t.ok()) << c.type;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kUnimplemented) << t.status();
    EXPECT_THAT(t.status().message(), HasSubstr(c.path + ": "));
    EXPECT_THAT(t.status().message(), HasSubstr("\"" + c.type + "\""));
  }
  Json dropout = Llama3Json();
  dropout["model"]["dropout"] = 0.1;
  auto d = hf::HfTokenizer::FromJson(dropout.dump());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(d.status().message(), HasSubstr("tokenizer.json.model.dropout"));
  Json bad_regex = Llama3Json();
  bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  auto r = hf::HfTokenizer::FromJson(bad_regex.dump());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("pre_tokenizer.pretokenizers[0].pattern"));
  Json bad_merge = Llama3Json();
  bad_merge["model"]["merges"].push_back("x zz");
  auto m = hf::HfTokenizer::FromJson(bad_merge.dump());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("merges[3]"));
}

TEST(TokenizerLoaderTest, ConfigFromMemory) {
  TokenizerFiles files;
  files.tokenizer_json = Llama3Json().dump();
  files.tokenizer_config_json =
      Json{{"bos_token", {{"content", "<|begin_of_text|>"}, {"lstrip", false}}},
           {"eos_token", "<|eot_id|>"},
           {"model_max_length", 8192},
           {"chat_template",
            {{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}}}}
          .dump();
  files.generation_config_json = Json{{"eos_token_id", {261, 262}}}.dump();
  auto loaded = LoadTokenizer(files, 0);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->info.bos_id, 261);
  EXPECT_EQ(loaded->info.bos_token, "<|begin_of_text|>");
  EXPECT_THAT(loaded->info.eos_ids, ElementsAre(262, 261));  // the tokenizer's EOS first
  EXPECT_THAT(loaded->tokenizer->eos_ids(), ElementsAre(262, 261));
  EXPECT_EQ(loaded->info.chat_template, "D");
  EXPECT_EQ(loaded->info.model_max_length, 8192);
  // The hash depends on every file's content.
  auto again = LoadTokenizer(files, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->info.hash, loaded->info.hash);
  files.generation_config_json = Json{{"eos_token_id", 262}}.dump();
  auto other = LoadTokenizer(files, 0);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(other->info.hash, loaded->info.hash);
  EXPECT_THAT(other->info.eos_ids, ElementsAre(262));
}

TEST(TokenizerLoaderTest, LlamaClassRebuildsThePostProcessorFromAddFlags) {
  TokenizerFiles files;
  files.tokenizer_json = MetaspaceJson(true).dump();
  files.tokenizer_config_json = Json{
      {"tokenizer_class", "LlamaTokenizer"},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"add_bos_token", true},
      {"add_eos_token", true}}.dump();
  auto loaded = LoadTokenizer(files, 0);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(Ids(*loaded->tokenizer, "hi", true), ElementsAre(1, 9, 2));
  EXPECT_THAT(Ids(*loaded->tokenizer, "hi", false), ElementsAre(9));
}

TEST(TokenizerLoaderTest, NoTokenizerJsonIsTheByteTokenizerButABrokenOneIsAnError) {
  TokenizerFiles none;
  auto bytes = LoadTokenizer(none, 300);
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(bytes->info.byte_tokenizer);
  EXPECT_EQ(bytes->tokenizer->vocab_size(), 300);
  EXPECT_EQ(bytes->info.bos_id, 1);
  TokenizerFiles broken;
  broken.tokenizer_json = "{\"model\": ";
  auto b = LoadTokenizer(broken, 300);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("tokenizer.json"));
  TokenizerFiles bad_eos;
  bad_eos.tokenizer_json = Llama3Json().dump();
  bad_eos.generation_config_json = Json{{"eos_token_id", {262, 999}}}.dump();
  auto e = LoadTokenizer(bad_eos, 0);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("generation_config.json: eos_token_id: 999"));
  TokenizerFiles bad_bos;
  bad_bos.tokenizer_json = Llama3Json().dump();
  bad_bos.tokenizer_config_json = Json{{"bos_token", "<nope>"}}.dump();
  auto bb = LoadTokenizer(bad_bos, 0);
  ASSERT_FALSE(bb.ok());
  EXPECT_THAT(bb.status().message(), HasSubstr("bos_token \"<nope>\""));
}

TEST(TokenizerLoaderTest, ReadsADirectory) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("tessera_tok_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  // Only a SentencePiece model: refused, never silently bytes.
  write("tokenizer.model", "x");
  auto sp = LoadTokenizerFromDir(dir.string(), 300);
  ASSERT_FALSE(sp.ok());
  EXPECT_EQ(sp.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sp.status().message(), HasSubstr("tokenizer.model"));
  // tokenizer.json + a chat_template.jinja that overrides the config's.
  write("tokenizer.json", Llama3Json().dump());
  write("tokenizer_config.json", Json{{"chat_template", "from config"}}.dump());
  write("chat_template.jinja", "from file");
  auto loaded = LoadTokenizerFromDir(dir.string(), 300);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->info.byte_tokenizer);
  EXPECT_EQ(loaded->info.chat_template, "from file");
  EXPECT_EQ(loaded->tokenizer->vocab_size(), 263);
  std::filesystem::remove_all(dir);
}

TEST(HfTokenizerConcurrencyTest, ThreadsEncodingTheSameCorpusAgree) {
  TESSERA_REQUIRE_TOKENIZER("qwen3");
  const Tokenizer& tok = *testing::SharedTokenizer("qwen3").tokenizer;
  std::vector<std::string> corpus;
  for (const auto& g : testing::ReadJsonl(testing::TokenizerDir("qwen3") + "/golden.jsonl")) {
    corpus.push_back(g.at("text").get<std::string>());
  }
  std::vector<std::vector<int32_t>> want;
  for (const std::string& s : corpus) want.push_back(Ids(tok, s));
  constexpr int kThreads = 8;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < corpus.size(); ++i) {
          // Threads walk the corpus from different starting points so they
          // fill and read the shared word cache concurrently.
          const size_t k = (i + t * 31) % corpus.size();
          auto ids = tok.Encode(corpus[k], false);
          if (!ids.ok() || *ids != want[k]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace tessera
