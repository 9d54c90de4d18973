// Tests of common/tokenizer.h: the byte tokenizer and IncrementalDecoder.
#include "common/tokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD

TEST(ByteTokenizerTest, EncodesBytesAsIdsPlusThree) {
  auto tok = MakeByteTokenizer(512);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  auto ids = tok->Encode("Hi!", /*add_bos=*/false);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre('H' + 3, 'i' + 3, '!' + 3));
  auto with_bos = tok->Encode("Hi", /*add_bos=*/true);
  ASSERT_TRUE(with_bos.ok());
  EXPECT_THAT(*with_bos, ElementsAre(1, 'H' + 3, 'i' + 3));
  auto bytes = tok->Encode(std::string("\x00\xff", 2), false);
  ASSERT_TRUE(bytes.ok());
  EXPECT_THAT(*bytes, ElementsAre(3, 258));
  auto empty = tok->Encode("", true);
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, ElementsAre(1));
}

TEST(ByteTokenizerTest, RoundTripsAnyBytes) {
  auto tok = MakeByteTokenizer(259);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  // Decode is valid UTF-8: each byte that cannot start a character in this
  // order (0x80..0xFF, none followed by a continuation) is one U+FFFD.
  std::string all_decoded = all.substr(0, 128);
  for (int b = 128; b < 256; ++b) all_decoded += kReplacement;
  for (const auto& [text, want] :
       {std::pair<std::string, std::string>{"hello, world", "hello, world"},
        {"é 中 😀", "é 中 😀"},
        {all, all_decoded}}) {
    auto ids = tok->Encode(text, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->size(), text.size() + 1);
    auto back = tok->Decode(*ids, /*skip_special=*/true);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, want);
  }
}

TEST(ByteTokenizerTest, SpecialSpellingsInTextAreNotSpecial) {
  auto tok = MakeByteTokenizer(512);
  auto ids = tok->Encode("<s></s><unk>", false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 12u);
  for (int32_t id : *ids) EXPECT_FALSE(tok->IsSpecial(id)) << id;
}

TEST(ByteTokenizerTest, Specials) {
  auto tok = MakeByteTokenizer(512);
  EXPECT_TRUE(tok->IsSpecial(0));
  EXPECT_TRUE(tok->IsSpecial(1));
  EXPECT_TRUE(tok->IsSpecial(2));
  EXPECT_FALSE(tok->IsSpecial(3));
  EXPECT_FALSE(tok->IsSpecial(258));
  EXPECT_FALSE(tok->IsSpecial(259));  // "<tok_N>" ids are ordinary tokens
  EXPECT_FALSE(tok->IsSpecial(-1));
  EXPECT_FALSE(tok->IsSpecial(512));

  const std::vector<int32_t> ids = {1, 'a' + 3, 0, 'b' + 3, 2};
  auto skipped = tok->Decode(ids, /*skip_special=*/true);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, "ab");
  auto shown = tok->Decode(ids, /*skip_special=*/false);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(*shown, "<s>a<unk>b</s>");
}

TEST(ByteTokenizerTest, IdsPastTheBytesDecodeAsPlaceholders) {
  auto tok = MakeByteTokenizer(512);
  const std::vector<int32_t> ids = {259, 'x' + 3, 511};
  for (bool skip : {true, false}) {
    auto text = tok->Decode(ids, skip);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, "<tok_259>x<tok_511>");
  }
}

TEST(ByteTokenizerTest, VocabBounds) {
  auto tok = MakeByteTokenizer(300);
  for (int32_t bad : {-1, 300, 1 << 30}) {
    const std::vector<int32_t> ids = {'a' + 3, bad};
    auto text = tok->Decode(ids, true);
    ASSERT_FALSE(text.ok()) << bad;
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(text.status().message(), HasSubstr(std::to_string(bad)));
  }
  EXPECT_TRUE(tok->Decode(std::vector<int32_t>{299}, true).ok());

  // A vocabulary too small for every byte refuses the bytes it lacks.
  auto small = MakeByteTokenizer(100);
  EXPECT_TRUE(small->Encode("A", false).ok());  // 'A' + 3 = 68
  auto high = small->Encode("z", false);        // 'z' + 3 = 125
  ASSERT_FALSE(high.ok());
  EXPECT_EQ(high.status().code(), absl::StatusCode::kInvalidArgument);
}

// Feeds `text`'s byte tokens to an IncrementalDecoder in pieces of `step`
// tokens and returns the concatenated output, checking that no piece ends
// inside a UTF-8 sequence.
std::string StreamInPieces(const Tokenizer& tok, const std::string& text, size_t step) {
  auto ids = tok.Encode(text, false);
  EXPECT_TRUE(ids.ok());
  IncrementalDecoder dec(&tok);
  std::string out;
  for (size_t i = 0; i < ids->size(); i += step) {
    const size_t n = std::min(step, ids->size() - i);
    auto piece = dec.Append(std::span<const int32_t>(ids->data() + i, n));
    EXPECT_TRUE(piece.ok());
    if (!piece->empty()) {
      // A piece never ends with an unfinished multi-byte sequence.
      const unsigned char last = static_cast<unsigned char>(piece->back());
      EXPECT_TRUE(last < 0x80 || (last >= 0x80 && last <= 0xBF)) << *piece;
    }
    out += *piece;
  }
  out += dec.Flush();
  return out;
}

TEST(IncrementalDecoderTest, HoldsBackSplitCharacters) {
  auto tok = MakeByteTokenizer(512);
  const std::string text = "a é 中文 😀!";  // 2-, 3- and 4-byte characters
  for (size_t step = 1; step <= 5; ++step) {
    EXPECT_EQ(StreamInPieces(*tok, text, step), text) << "step " << step;
  }
}

TEST(IncrementalDecoderTest, EmitsACharacterOnlyWhenComplete) {
  auto tok = MakeByteTokenizer(512);
  IncrementalDecoder dec(tok.get());
  const std::string smile = "😀";  // F0 9F 98 80
  ASSERT_EQ(smile.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    const std::vector<int32_t> id = {static_cast<unsigned char>(smile[i]) + 3};
    auto piece = dec.Append(id);
    ASSERT_TRUE(piece.ok());
    EXPECT_EQ(*piece, "") << i;
  }
  const std::vector<int32_t> last = {static_cast<unsigned char>(smile[3]) + 3, 'x' + 3};
  auto piece = dec.Append(last);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, smile + "x");
  EXPECT_EQ(dec.Flush(), "");
}

TEST(IncrementalDecoderTest, FlushReplacesAnUnfinishedSequence) {
  auto tok = MakeByteTokenizer(512);
  IncrementalDecoder dec(tok.get());
  const std::string zh = "中";  // E4 B8 AD
  const std::vector<int32_t> ids = {'o' + 3, 'k' + 3, static_cast<unsigned char>(zh[0]) + 3,
                                    static_cast<unsigned char>(zh[1]) + 3};
  auto piece = dec.Append(ids);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, "ok");
  EXPECT_EQ(dec.Flush(), kReplacement);
  EXPECT_EQ(dec.Flush(), "");  // nothing left
}

TEST(IncrementalDecoderTest, InvalidBytesBecomeReplacementCharacters) {
  auto tok = MakeByteTokenizer(512);
  auto decode_all = [&](const std::string& bytes) {
    std::vector<int32_t> ids;
    for (unsigned char b : bytes) ids.push_back(b + 3);
    IncrementalDecoder dec(tok.get());
    auto out = dec.Append(ids);
    EXPECT_TRUE(out.ok());
    return *out + dec.Flush();
  };
  // A lone continuation byte and an impossible byte: one U+FFFD each.
  EXPECT_EQ(decode_all("a\x80\xff"
                       "b"),
            "a" + kReplacement + kReplacement + "b");
  // A truncated sequence followed by ASCII: one U+FFFD for the maximal subpart.
  EXPECT_EQ(decode_all("\xe4\xb8"
                       "A"),
            kReplacement + "A");
  // Overlong encoding and a surrogate are invalid.
  EXPECT_EQ(decode_all("\xc0\xaf"), kReplacement + kReplacement);
  EXPECT_EQ(decode_all("\xed\xa0\x80"), kReplacement + kReplacement + kReplacement);
  // Above U+10FFFF.
  EXPECT_EQ(decode_all("\xf4\x90\x80\x80"),
            kReplacement + kReplacement + kReplacement + kReplacement);
  // Valid text around them survives.
  EXPECT_EQ(decode_all("é\x80中"), "é" + kReplacement + "中");
}

TEST(IncrementalDecoderTest, SkipsSpecialsAndPropagatesErrors) {
  auto tok = MakeByteTokenizer(512);
  IncrementalDecoder dec(tok.get());  // skip_special defaults to true
  const std::string e = "é";          // C3 A9
  const std::vector<int32_t> first = {1, static_cast<unsigned char>(e[0]) + 3};
  auto a = dec.Append(first);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "");
  const std::vector<int32_t> bad = {9999};
  EXPECT_FALSE(dec.Append(bad).ok());
  const std::vector<int32_t> rest = {static_cast<unsigned char>(e[1]) + 3, 2};
  auto b = dec.Append(rest);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, e);  // the failed Append left the pending byte in place

  IncrementalDecoder shown(tok.get(), /*skip_special=*/false);
  const std::vector<int32_t> ids = {1, 'h' + 3, 2};
  auto s = shown.Append(ids);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "<s>h</s>");
}

}  // namespace
}  // namespace tessera
