#include "common/cli_help.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace tessera {
namespace {

// Where a flag is defined, relative to the source tree ("worker/flags.cc").
std::string SourceFile(const absl::CommandLineFlag& flag) {
  constexpr absl::string_view kThisFile = __FILE__;
  const absl::string_view root =
      kThisFile.substr(0, kThisFile.size() - (sizeof("common/cli_help.cc") - 1));
  std::string file = flag.Filename();
  if (absl::StartsWith(file, root)) file.erase(0, root.size());
  return file;
}

std::string TypeOf(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<bool>()) return "";
  if (flag.IsOfType<int32_t>() || flag.IsOfType<int64_t>() || flag.IsOfType<uint64_t>()) {
    return "=INT";
  }
  if (flag.IsOfType<double>() || flag.IsOfType<float>()) return "=NUMBER";
  return "=TEXT";
}

std::string DefaultOf(const absl::CommandLineFlag& flag) {
  const std::string value = flag.DefaultValue();
  if (flag.IsOfType<std::string>()) return absl::StrCat("\"", value, "\"");
  return value;
}

// `text` wrapped at 78 columns, each line indented by `indent` spaces.
std::string Wrap(absl::string_view text, size_t indent) {
  std::string out;
  std::string line(indent, ' ');
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == absl::string_view::npos) end = text.size();
    const absl::string_view word = text.substr(start, end - start);
    if (line.size() > indent && line.size() + 1 + word.size() > 78) {
      absl::StrAppend(&out, line, "\n");
      line.assign(indent, ' ');
    }
    if (line.size() > indent) line += ' ';
    absl::StrAppend(&line, word);
    start = end + 1;
  }
  if (line.size() > indent) absl::StrAppend(&out, line, "\n");
  return out;
}

}  // namespace

bool IsHelpArgument(absl::string_view arg) {
  return arg == "--help" || arg == "-help" || arg == "-h" || arg == "--helpfull" ||
         arg == "-helpfull" || arg == "--helpshort" || arg == "-helpshort";
}

std::string FlagsHelp(absl::string_view program, absl::string_view usage) {
  // file -> flags, both sorted.
  std::map<std::string, std::vector<const absl::CommandLineFlag*>> by_file;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->IsRetired()) continue;
    const std::string file = SourceFile(*flag);
    if (absl::StrContains(file, "absl/")) continue;
    by_file[file].push_back(flag);
  }
  std::string out = absl::StrCat(program, ": ", usage, "\n");
  for (auto& [file, flags] : by_file) {
    std::sort(flags.begin(), flags.end(),
              [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
    absl::StrAppend(&out, "\n  Flags from ", file, ":\n");
    for (const absl::CommandLineFlag* flag : flags) {
      const std::string name = absl::StrReplaceAll(flag->Name(), {{"_", "-"}});
      absl::StrAppend(&out, "    --", name, TypeOf(*flag), " (default: ", DefaultOf(*flag), ")\n",
                      Wrap(flag->Help(), 6));
    }
  }
  absl::StrAppend(&out,
                  "\n  Underscores work in place of the dashes too; values go as --flag=value or "
                  "--flag value;\n  a boolean is --flag, --flag=false or --noflag.\n");
  return out;
}

}  // namespace tessera
