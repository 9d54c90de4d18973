// `tessera workers --watch` and `tessera status --watch`: the command's
// output redrawn every --interval seconds, like top, until SIGINT/SIGTERM
// (io.wait_or_stop says so) or --count frames. On a terminal each frame
// clears the screen and starts with a title line; otherwise each frame
// starts with "--- tessera <command> <time>"; with --json each frame is one
// JSON document on one line. A failed call is reported on stderr and the
// watch goes on (a router restarting comes back into view).
//
// Thread-compatible, as RunCli.
#pragma once

#include <functional>

#include "router/cli/cli_args.h"
#include "router/cli/cli_commands.h"

namespace tessera::cli {

// Calls `frame` (one call, printing to the CliIo it gets) once per refresh.
// Returns 0 when stopped by a signal, else the exit code of the last frame.
int RunWatch(const CliArgs& args, CliIo& io, const std::function<int(CliIo& frame_io)>& frame);

}  // namespace tessera::cli
