#include "tests/deploy/command_flags.h"

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/subprocess.h"

namespace tessera::testing {
namespace {

// absl's own flags, which every tessera binary accepts.
const std::set<std::string>& AbslBuiltins() {
  static const std::set<std::string> kFlags = {
      "help",    "helpfull",        "helpshort", "helppackage", "helpon",     "helpmatch",
      "version", "only_check_args", "flagfile",  "fromenv",     "tryfromenv", "undefok"};
  return kFlags;
}

std::optional<Program> ProgramOf(const std::string& word) {
  const std::string base = std::filesystem::path(word).filename().string();
  if (base == "tessera-worker") return Program::kWorker;
  if (base == "tessera-router") return Program::kRouter;
  if (base == "launch-replica.sh") return Program::kLaunchReplica;
  return std::nullopt;
}

bool EndsCommand(const std::string& word) {
  static const std::set<std::string> kSeparators = {"|", "||", "&&", ";", "&", "then", "do"};
  return kSeparators.contains(word) || absl::StartsWith(word, "#") || absl::StartsWith(word, ">") ||
         absl::StartsWith(word, "<") || absl::StartsWith(word, "2>") ||
         absl::StartsWith(word, "1>") || absl::EndsWith(word, ";");
}

bool IsAssignment(const std::string& word) {
  static const std::regex kAssign("^[A-Za-z_][A-Za-z0-9_]*=.*");
  return std::regex_match(word, kAssign);
}

bool StartsCommandLine(const std::string& line) {
  const std::vector<std::string> words = ShellSplit(line);
  for (const std::string& w : words) {
    if (IsAssignment(w)) continue;
    const std::string base = std::filesystem::path(w).filename().string();
    return ProgramOf(w).has_value() || base == "mpirun" || base == "mpiexec";
  }
  return false;
}

}  // namespace

std::string NormalizeFlag(const std::string& name) {
  absl::string_view n = name;
  while (absl::ConsumePrefix(&n, "-")) {
  }
  return absl::StrReplaceAll(n, {{"-", "_"}});
}

bool HelpFlags::Knows(const std::string& name) const {
  const std::string n = NormalizeFlag(name);
  if (flags.contains(n)) return true;
  if (absl_builtins && AbslBuiltins().contains(n)) return true;
  if (absl_builtins && absl::StartsWith(n, "no")) {
    auto it = flags.find(n.substr(2));
    return it != flags.end() && !it->second.takes_value;
  }
  return false;
}

std::optional<std::string> HelpFlags::Default(const std::string& name) const {
  auto it = flags.find(NormalizeFlag(name));
  if (it == flags.end()) return std::nullopt;
  return it->second.default_value;
}

HelpFlags ParseTesseraHelp(const std::string& program, const std::string& text) {
  HelpFlags help;
  help.program = program;
  help.text = text;
  help.absl_builtins = true;
  // "    --name=TYPE (default: VALUE)"; a boolean has no "=TYPE".
  static const std::regex kEntry(R"(^ {4}--([a-z0-9-]+)(=[A-Z]+)? \(default: (.*)\)$)");
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(text, '\n'))) {
    std::smatch m;
    if (!std::regex_search(line, m, kEntry)) continue;
    FlagSpec spec;
    spec.takes_value = m[2].matched;
    std::string value = m[3].str();
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    spec.default_value = value;
    help.flags[NormalizeFlag(m[1].str())] = spec;
  }
  return help;
}

HelpFlags ParseUsageHelp(const std::string& program, const std::string& text) {
  HelpFlags help;
  help.program = program;
  help.text = text;
  // "  --np N   ..." / "  -h, --help   ..." (option lines are indented by 2).
  static const std::regex kOption(
      R"(^ {2}(?:-[A-Za-z], )?--([a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z_]*))?)");
  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (const std::string& line : lines) {
    std::smatch m;
    if (!std::regex_search(line, m, kOption)) continue;
    FlagSpec spec;
    spec.takes_value = m[2].matched;
    help.flags[NormalizeFlag(m[1].str())] = spec;
  }
  return help;
}

absl::StatusOr<HelpFlags> ReadHelp(const std::string& binary) {
  if (!std::filesystem::exists(binary)) {
    return absl::NotFoundError(absl::StrCat(binary, " does not exist: build it first"));
  }
  const CommandResult r = RunCommand("'" + binary + "' --help 2>&1", 30);
  const std::string name = std::filesystem::path(binary).filename().string();
  HelpFlags help =
      absl::EndsWith(name, ".sh") ? ParseUsageHelp(name, r.out) : ParseTesseraHelp(name, r.out);
  if (help.flags.empty()) {
    return absl::InternalError(
        absl::StrCat(binary, " --help (exit ", r.exit_code, ") lists no flags:\n", r.out));
  }
  return help;
}

const char* ProgramName(Program p) {
  switch (p) {
    case Program::kWorker:
      return "tessera-worker";
    case Program::kRouter:
      return "tessera-router";
    case Program::kLaunchReplica:
      return "launch-replica.sh";
  }
  return "?";
}

std::vector<std::string> ShellSplit(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\'') {
      in_word = true;
      const size_t end = line.find('\'', i + 1);
      word += line.substr(i + 1, (end == std::string::npos ? line.size() : end) - i - 1);
      i = end == std::string::npos ? line.size() : end;
    } else if (c == '"') {
      in_word = true;
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        word += line[i];
      }
    } else if (c == '\\' && i + 1 < line.size()) {
      in_word = true;
      word += line[++i];
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      word += c;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

std::vector<Invocation> FindInvocations(const std::vector<std::string>& words,
                                        const std::string& where) {
  std::vector<Invocation> found;
  std::optional<Invocation> current;
  auto flush = [&] {
    if (current) found.push_back(*current);
    current.reset();
  };
  for (const std::string& w : words) {
    if (EndsCommand(w)) {
      flush();
      if (absl::StartsWith(w, "#")) break;
      continue;
    }
    if (!current) {
      if (std::optional<Program> p = ProgramOf(w)) current = Invocation{*p, {}, where};
      continue;
    }
    if (current->program == Program::kLaunchReplica && w == "--") {
      flush();
      current = Invocation{Program::kWorker, {}, where};
      continue;
    }
    current->args.push_back(w);
  }
  flush();
  return found;
}

std::vector<std::pair<int, std::string>> CommandLines(const std::string& text, bool markdown) {
  std::vector<std::pair<int, std::string>> out;
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  bool in_block = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line(absl::StripAsciiWhitespace(lines[i]));
    if (markdown && absl::StartsWith(line, "```")) {
      in_block = !in_block;
      continue;
    }
    if (markdown && !in_block) continue;
    const int first_line = static_cast<int>(i) + 1;
    std::string joined;
    while (true) {
      absl::string_view l = line;
      if (!absl::ConsumePrefix(&l, "$ ")) absl::ConsumePrefix(&l, "# ");
      const bool continued = absl::EndsWith(l, "\\");
      if (continued) l.remove_suffix(1);
      absl::StrAppend(&joined, l, " ");
      if (!continued || i + 1 >= lines.size()) break;
      line = std::string(absl::StripAsciiWhitespace(lines[++i]));
      if (absl::StartsWith(line, "#")) line = line.substr(1);
    }
    if (StartsCommandLine(joined)) out.emplace_back(first_line, joined);
  }
  return out;
}

std::vector<FlagUse> FlagUses(const Invocation& invocation, const HelpFlags& help) {
  std::vector<FlagUse> uses;
  const std::vector<std::string>& a = invocation.args;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!absl::StartsWith(a[i], "--") || a[i] == "--") continue;
    FlagUse use;
    const size_t eq = a[i].find('=');
    use.spelled = a[i].substr(0, eq);
    use.name = NormalizeFlag(use.spelled);
    if (eq != std::string::npos) {
      use.value = a[i].substr(eq + 1);
    } else {
      auto it = help.flags.find(use.name);
      if (it != help.flags.end() && it->second.takes_value && i + 1 < a.size()) {
        use.value = a[++i];
      }
    }
    uses.push_back(use);
  }
  return uses;
}

std::optional<std::string> LastValue(const std::vector<FlagUse>& uses, const std::string& name) {
  std::optional<std::string> value;
  for (const FlagUse& u : uses) {
    if (u.name == NormalizeFlag(name)) value = u.value;
  }
  return value;
}

}  // namespace tessera::testing
