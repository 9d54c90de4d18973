// RunWatch (`tessera workers|status --watch`): frames per --count, the stop
// signal (io.wait_or_stop), the three output shapes (plain text with a
// "---" line, terminal with a cleared screen, --json one line per frame),
// errors kept after the frame, and the exit code of the last frame.
#include "router/cli/cli_watch.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;

CliArgs WatchArgs(Command command, std::optional<int64_t> count) {
  CliArgs a;
  a.command = command;
  a.watch = true;
  a.interval_s = 0.01;
  a.count = count;
  a.router = "r:1";
  return a;
}

struct Streams {
  std::ostringstream out, err;
  std::istringstream in;
  CliIo io{out, err, in};
  std::vector<std::chrono::milliseconds> waits;
};

TEST(CliWatchTest, CountFramesWithAHeaderLineEach) {
  Streams run;
  run.io.wait_or_stop = [&run](std::chrono::milliseconds d) {
    run.waits.push_back(d);
    return false;
  };
  int frames = 0;
  const int code = RunWatch(WatchArgs(Command::kWorkers, 3), run.io, [&](CliIo& io) {
    io.out << "frame " << ++frames << "\n";
    return kExitOk;
  });
  EXPECT_EQ(code, kExitOk);
  EXPECT_EQ(frames, 3);
  ASSERT_EQ(run.waits.size(), 2u);  // between frames only
  EXPECT_EQ(run.waits[0], std::chrono::milliseconds(10));
  const std::vector<std::string> lines = absl::StrSplit(run.out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << run.out.str();
  EXPECT_TRUE(absl::StartsWith(lines[0], "--- tessera workers ")) << lines[0];
  EXPECT_EQ(lines[5], "frame 3");
}

TEST(CliWatchTest, StopSignalEndsWithExit0) {
  Streams run;
  int waits = 0;
  run.io.wait_or_stop = [&waits](std::chrono::milliseconds) { return ++waits == 2; };
  int frames = 0;
  const int code = RunWatch(WatchArgs(Command::kStatus, std::nullopt), run.io, [&](CliIo& io) {
    ++frames;
    io.err << "tessera: status: UNAVAILABLE: down\n";
    return kExitUnreachable;
  });
  EXPECT_EQ(code, kExitOk);  // stopped by the signal, like top
  EXPECT_EQ(frames, 2);
  EXPECT_THAT(run.err.str(), HasSubstr("UNAVAILABLE: down"));
}

TEST(CliWatchTest, LastFrameDecidesTheExitCode) {
  Streams run;
  run.io.wait_or_stop = [](std::chrono::milliseconds) { return false; };
  int frames = 0;
  const int code = RunWatch(WatchArgs(Command::kStatus, 2), run.io,
                            [&](CliIo&) { return ++frames == 2 ? kExitAuth : kExitOk; });
  EXPECT_EQ(code, kExitAuth);
}

TEST(CliWatchTest, JsonIsOneLinePerFrameAndTerminalClears) {
  Streams run;
  run.io.wait_or_stop = [](std::chrono::milliseconds) { return false; };
  CliArgs a = WatchArgs(Command::kStatus, 2);
  a.json = true;
  RunWatch(a, run.io, [](CliIo& io) {
    EXPECT_TRUE(io.compact_json);
    io.out << "{\"a\":1}\n";
    return kExitOk;
  });
  EXPECT_EQ(run.out.str(), "{\"a\":1}\n{\"a\":1}\n");

  Streams tty;
  tty.io.out_is_terminal = true;
  tty.io.wait_or_stop = [](std::chrono::milliseconds) { return false; };
  RunWatch(WatchArgs(Command::kWorkers, 1), tty.io, [](CliIo& io) {
    io.out << "table\n";
    return kExitOk;
  });
  EXPECT_TRUE(absl::StartsWith(tty.out.str(), "\x1b[H\x1b[2J")) << tty.out.str();
  EXPECT_THAT(tty.out.str(), HasSubstr("tessera workers"));
  EXPECT_THAT(tty.out.str(), HasSubstr("router r:1"));
  EXPECT_TRUE(absl::EndsWith(tty.out.str(), "table\n"));
}

}  // namespace
}  // namespace tessera::cli
