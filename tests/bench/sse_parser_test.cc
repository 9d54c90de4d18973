#include "bench/sse_parser.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::bench {
namespace {

std::vector<std::string> FeedAll(SseParser& p, const std::vector<std::string>& pieces) {
  std::vector<std::string> events;
  for (const std::string& piece : pieces) {
    p.Feed(piece, [&events](std::string_view data) { events.emplace_back(data); });
  }
  return events;
}

TEST(SseParserTest, SplitsEventsAcrossArbitraryPieces) {
  const std::string stream =
      "data: {\"a\":1}\n\n"
      "data: {\"b\":2}\r\n\r\n"
      ": a comment\n"
      "event: x\n"
      "data: [DONE]\n\n";
  // Every split point of the stream gives the same events.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser p;
    const auto events = FeedAll(p, {stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "[DONE]"})) << cut;
  }
}

TEST(SseParserTest, JoinsDataLinesAndSkipsEmptyEvents) {
  SseParser p;
  const auto events = FeedAll(p, {"\n\ndata:one\ndata: two\n\nid: 3\n\n"});
  EXPECT_EQ(events, (std::vector<std::string>{"one\ntwo"}));
}

TEST(SseParserTest, HoldsAnIncompleteEvent) {
  SseParser p;
  EXPECT_TRUE(FeedAll(p, {"data: {\"a\":", "1}\n"}).empty());
  EXPECT_EQ(FeedAll(p, {"\n"}), (std::vector<std::string>{"{\"a\":1}"}));
}

}  // namespace
}  // namespace tessera::bench
