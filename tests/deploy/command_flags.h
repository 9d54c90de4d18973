// Flags of Tessera's programs as their own --help states them, and the
// command lines that use them (Kubernetes container args, shell examples in
// scripts and docs), so a test can check every flag a deployment file
// passes against the real binaries.
//
// Thread-compatible: plain functions over values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::testing {

struct FlagSpec {
  bool takes_value = true;    // `--flag VALUE` consumes the next word
  std::string default_value;  // Tessera binaries: as --help prints it (strings unquoted)
};

// A program's flags, keyed by normalised name (no dashes in front,
// underscores inside: "kv_cache_memory").
struct HelpFlags {
  std::string program;
  std::string text;  // the whole --help output
  std::map<std::string, FlagSpec> flags;
  // A Tessera binary: absl also takes its own flags (--flagfile, --version,
  // ...) and --noNAME for a boolean NAME.
  bool absl_builtins = false;

  // Whether `--name` (any spelling) is accepted, including absl's built-in
  // flags and --noNAME for boolean flags.
  bool Knows(const std::string& name) const;
  // The default --help states; nullopt for an unknown flag.
  std::optional<std::string> Default(const std::string& name) const;
};

// "--kv-cache-memory" / "kv_cache_memory" -> "kv_cache_memory".
std::string NormalizeFlag(const std::string& name);

// Parses a Tessera binary's --help (common/cli_help.h:
// "    --name=TYPE (default: VALUE)", a boolean without "=TYPE").
HelpFlags ParseTesseraHelp(const std::string& program, const std::string& text);
// Parses a script's usage ("  --name METAVAR   description"; an upper-case
// METAVAR means the flag takes a value).
HelpFlags ParseUsageHelp(const std::string& program, const std::string& text);
// Runs `binary --help` (bounded) and parses it (Tessera style for tessera
// binaries, usage style for scripts). An error when the binary is missing or
// prints no flags.
absl::StatusOr<HelpFlags> ReadHelp(const std::string& binary);

enum class Program { kWorker, kRouter, kLaunchReplica };
const char* ProgramName(Program p);

// One run of a Tessera program found in a command line: its arguments up to
// the end of that command (a shell separator, a redirection, a comment, or
// for launch-replica.sh the "--" after which the worker's flags start, which
// are a kWorker invocation of their own).
struct Invocation {
  Program program;
  std::vector<std::string> args;
  std::string where;  // for messages: file and line or object
};

// Splits a shell command line into words: '...' and "..." quoting,
// backslash escapes; no expansion.
std::vector<std::string> ShellSplit(const std::string& line);
// The Tessera invocations among `words` (programs recognised by basename:
// tessera-worker, tessera-router, launch-replica.sh; anything before them,
// such as mpirun and its options or VAR=value, is skipped).
std::vector<Invocation> FindInvocations(const std::vector<std::string>& words,
                                        const std::string& where);
// The command lines of a text file that start with a Tessera program, mpirun
// or VAR=value assignments (after an optional "$ " or "# " prefix), with
// backslash-continued lines joined. `markdown`: only inside ``` blocks.
std::vector<std::pair<int, std::string>> CommandLines(const std::string& text, bool markdown);

struct FlagUse {
  std::string name;                  // normalised
  std::string spelled;               // as written, e.g. "--shutdown-timeout"
  std::optional<std::string> value;  // "=VALUE" or the next word when it takes one
};
// The flags of an invocation, read with `help` (to know which flags take a
// value); words that are not flags (values, positionals) are skipped.
std::vector<FlagUse> FlagUses(const Invocation& invocation, const HelpFlags& help);
// The value of the last use of `name` (normalised), if any.
std::optional<std::string> LastValue(const std::vector<FlagUse>& uses, const std::string& name);

}  // namespace tessera::testing
