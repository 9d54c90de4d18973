// Tests of common/tokenizer/regex.h: PCRE2 reading Hugging Face's Oniguruma
// patterns with Oniguruma's classes, and find_iter's treatment of empty
// matches.
#include <string>
#include <vector>

#include "common/tokenizer/regex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::hf {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::vector<Span> Find(const std::string& regex, const std::string& text) {
  auto p = Pattern::Regex(regex, "test");
  EXPECT_TRUE(p.ok()) << p.status();
  std::vector<Span> out;
  if (p.ok()) EXPECT_TRUE((*p)->FindAll(text, &out).ok());
  return out;
}

TEST(TokenizerRegexTest, SpaceIsOnigurumasClass) {
  // U+180E is not a space for Oniguruma (PCRE2's \s has it); NBSP, NEL,
  // U+3000 and U+2028 are.
  EXPECT_TRUE(Find(R"(\s)", "\xE1\xA0\x8E").empty());
  EXPECT_EQ(Find(R"(\s+)", "\xC2\xA0\xC2\x85\xE3\x80\x80\xE2\x80\xA8").size(), 1u);
  EXPECT_THAT(Find(R"([^\s\p{L}]+)", "a\xE1\xA0\x8E b"), ElementsAre(Pair(1, 4)));
  EXPECT_THAT(Find(R"(\S+)", "ab\xE1\xA0\x8E c"), ElementsAre(Pair(0, 5), Pair(6, 7)));
}

TEST(TokenizerRegexTest, WordAndHexAreOnigurumasClasses) {
  // A combining mark and a Roman numeral are word characters for Oniguruma.
  EXPECT_THAT(Find(R"(\w+)", "e\xCC\x81\xE2\x85\xAB-x"), ElementsAre(Pair(0, 6), Pair(7, 8)));
  EXPECT_THAT(Find(R"(\h+)", "zz0aF g"), ElementsAre(Pair(2, 5)));
  EXPECT_THAT(Find(R"([\h]+)", "0aF g"), ElementsAre(Pair(0, 3)));
}

TEST(TokenizerRegexTest, EmptyMatchesAdvanceOneCharacter) {
  // x* matches empty between characters; no empty match right after a match.
  EXPECT_THAT(Find("x*", "axx\xC3\xA9"), ElementsAre(Pair(0, 0), Pair(1, 3), Pair(5, 5)));
}

TEST(TokenizerRegexTest, LiteralsAndErrors) {
  auto lit = Pattern::Literal("ab");
  std::vector<Span> out;
  ASSERT_TRUE(lit->FindAll("abababa", &out).ok());
  EXPECT_THAT(out, ElementsAre(Pair(0, 2), Pair(2, 4), Pair(4, 6)));
  auto replaced = lit->ReplaceAll("xaby", "--");
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(*replaced, "x--y");
  auto bad = Pattern::Regex("a(", "tokenizer.json.pre_tokenizer.pattern");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::HasSubstr("tokenizer.json.pre_tokenizer.pattern"));
}

}  // namespace
}  // namespace tessera::hf
