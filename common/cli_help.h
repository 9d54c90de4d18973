// The --help text of Tessera's binaries: the usage message, then every
// Tessera flag (absl's own are left out) grouped by the file that defines
// it, written as users type them (`--max-num-seqs`, with dashes) with its
// type, default and description. Not thread-safe (reads the flag registry);
// for ParseCommandLine (common/cli.h).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace tessera {

// `program` is argv[0]'s base name; `usage` the binary's usage message.
std::string FlagsHelp(absl::string_view program, absl::string_view usage);

// True for the arguments that ask for help: --help, -help, -h, --helpfull,
// --helpshort (absl's names; all show the same text).
bool IsHelpArgument(absl::string_view arg);

}  // namespace tessera
