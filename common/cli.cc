#include "common/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/cli_help.h"

namespace tessera {

std::vector<char*> ParseCommandLine(int argc, char** argv, absl::string_view usage) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(absl::StrCat(
      usage,
      "\n  Flags may be written with dashes or underscores: --max-num-seqs = --max_num_seqs."));
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  // "Flags from worker/flags.cc", not from an absolute build path.
  config.normalize_filename = [](absl::string_view file) {
    constexpr absl::string_view kThisFile = __FILE__;
    const absl::string_view root =
        kThisFile.substr(0, kThisFile.size() - sizeof("common/cli.cc") + 1);
    if (absl::StartsWith(file, root)) file.remove_prefix(root.size());
    return std::string(file);
  };
  absl::SetFlagsUsageConfig(config);

  // --help (and absl's other help flags): our own text, with the flags as
  // users type them, on stdout, and exit 0 (absl's exits 1 and prints
  // underscores).
  for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (IsHelpArgument(argv[i])) {
      const absl::string_view program = argv[0];
      const std::string help = FlagsHelp(program.substr(program.rfind('/') + 1), usage);
      std::fwrite(help.data(), 1, help.size(), stdout);
      std::fflush(stdout);
      std::exit(0);
    }
  }

  // `--foo-bar[=value]` -> `--foo_bar[=value]` when foo_bar is a defined flag
  // (so a value that merely starts with a dash is left alone), up to `--`.
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::strcmp(arg, "--") == 0) break;
    if (arg[0] != '-') continue;
    char* name = arg + (arg[1] == '-' ? 2 : 1);
    char* end = std::strchr(name, '=');
    if (end == nullptr) end = name + std::strlen(name);
    std::string normalized(name, end);
    std::replace(normalized.begin(), normalized.end(), '-', '_');
    const bool known = absl::FindCommandLineFlag(normalized) != nullptr ||
                       (absl::StartsWith(normalized, "no") &&
                        absl::FindCommandLineFlag(normalized.substr(2)) != nullptr);
    if (known) std::replace(name, end, '-', '_');
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace tessera
