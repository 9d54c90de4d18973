// Command-line parsing for Tessera's binaries, over absl flags.
//
// Flags are defined with underscores (absl's rule) and may be written with
// dashes, vLLM-style: `--max-num-seqs 8` and `--max_num_seqs=8` are the same.
// `--help` (or -h, --helpfull) prints every Tessera flag as users type it,
// with dashes (common/cli_help.h), and exits 0. Call once at the start of
// main; not thread-safe.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"

namespace tessera {

// Parses argv (exits on an unknown flag, --help or --version, as absl does)
// and returns the positional arguments, argv[0] first.
//
// Also turns off absl::Mutex's deadlock detection for the process. Debian
// builds Abseil without NDEBUG, which leaves the detector on: every lock taken
// while another is held updates a global lock graph (about 4x the cost of a
// nested lock/unlock, and 2-3% of the router's CPU per request). Binaries get
// the release behaviour; unit tests, which do not call this, keep the checks.
std::vector<char*> ParseCommandLine(int argc, char** argv, absl::string_view usage);

}  // namespace tessera
