#include "router/cli/cli_watch.h"

#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tessera::cli {
namespace {

// Home the cursor and clear the screen (ANSI), as top and watch do.
constexpr char kClearScreen[] = "\x1b[H\x1b[2J";

bool WaitOrStop(CliIo& io, std::chrono::milliseconds interval) {
  if (io.wait_or_stop) return io.wait_or_stop(interval);
  std::this_thread::sleep_for(interval);
  return false;
}

}  // namespace

int RunWatch(const CliArgs& a, CliIo& io, const std::function<int(CliIo& frame_io)>& frame) {
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(a.interval_s * 1000));
  int code = kExitOk;
  for (int64_t i = 0; !a.count.has_value() || i < *a.count; ++i) {
    if (i > 0 && WaitOrStop(io, interval)) return kExitOk;
    std::ostringstream buffer;
    std::ostringstream errors;  // after the frame, so clearing the screen keeps them
    CliIo frame_io{buffer, errors, io.in};
    frame_io.compact_json = true;
    code = frame(frame_io);
    const std::string now =
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::Now(), absl::LocalTimeZone());
    if (a.json) {
      io.out << buffer.str();
    } else if (io.out_is_terminal) {
      io.out << kClearScreen
             << absl::StrFormat("tessera %s   every %gs   router %s   %s   (Ctrl-C quits)\n\n",
                                CommandName(*a.command), a.interval_s, a.router, now)
             << buffer.str();
    } else {
      io.out << "--- tessera " << CommandName(*a.command) << " " << now << "\n" << buffer.str();
    }
    io.out.flush();
    io.err << errors.str() << std::flush;
  }
  return code;
}

}  // namespace tessera::cli
