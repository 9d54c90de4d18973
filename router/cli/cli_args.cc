#include "router/cli/cli_args.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace tessera::cli {
namespace {

constexpr std::pair<Command, absl::string_view> kCommands[] = {
    {Command::kWorkers, "workers"},   {Command::kDrain, "drain"},   {Command::kUndrain, "undrain"},
    {Command::kAdd, "add"},           {Command::kRemove, "remove"}, {Command::kStatus, "status"},
    {Command::kGenerate, "generate"},
};

std::optional<Command> FindCommand(absl::string_view name) {
  for (const auto& [command, command_name] : kCommands) {
    if (command_name == name) return command;
  }
  return std::nullopt;
}

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

absl::StatusOr<double> PositiveSeconds(absl::string_view option, const std::string& value) {
  double v = 0;
  // At most 1e7 s (~116 days), so deadlines stay far from overflowing.
  if (!absl::SimpleAtod(value, &v) || !std::isfinite(v) || v <= 0 || v > 1e7) {
    return Usage(absl::StrCat(option, " needs a positive number of seconds (at most 1e7), got '",
                              value, "'"));
  }
  return v;
}

// One option: its name without dashes (in the dashed spelling), whether it
// takes a value, the commands it belongs to (empty: every command) and what
// it sets.
struct OptionSpec {
  absl::string_view name;
  bool takes_value;
  std::vector<Command> commands;
  std::function<absl::Status(CliArgs&, const std::string&)> apply;
};

// An option whose value is the path of a PEM file, kept in `field`.
std::function<absl::Status(CliArgs&, const std::string&)> PemPath(std::string CliArgs::*field,
                                                                  absl::string_view flag) {
  return [field, flag](CliArgs& a, const std::string& v) {
    if (v.empty()) return Usage(absl::StrCat(flag, " needs the path of a PEM file"));
    a.*field = v;
    return absl::OkStatus();
  };
}

const std::vector<OptionSpec>& Options() {
  static const auto* options = new std::vector<OptionSpec>{
      {"router",
       true,
       {},
       [](CliArgs& a, const std::string& v) {
         if (v.empty()) return Usage("--router needs an address HOST:PORT");
         a.router = v;
         return absl::OkStatus();
       }},
      {"admin-token",
       true,
       {},
       [](CliArgs& a, const std::string& v) {
         a.admin_token = v;
         return absl::OkStatus();
       }},
      {"endpoint",
       true,
       {},
       [](CliArgs& a, const std::string& v) {
         if (v.empty()) return Usage("--endpoint needs an address HOST:PORT");
         a.endpoint = v;
         return absl::OkStatus();
       }},
      {"api-key",
       true,
       {},
       [](CliArgs& a, const std::string& v) {
         a.api_key = v;
         return absl::OkStatus();
       }},
      {"tls-ca", true, {Command::kGenerate}, PemPath(&CliArgs::tls_ca, "--tls-ca")},
      {"tls-cert", true, {Command::kGenerate}, PemPath(&CliArgs::tls_cert, "--tls-cert")},
      {"tls-key", true, {Command::kGenerate}, PemPath(&CliArgs::tls_key, "--tls-key")},
      {"timeout",
       true,
       {},
       [](CliArgs& a, const std::string& v) -> absl::Status {
         ASSIGN_OR_RETURN(a.timeout_s, PositiveSeconds("--timeout", v));
         return absl::OkStatus();
       }},
      {"json",
       false,
       {},
       [](CliArgs& a, const std::string&) {
         a.json = true;
         return absl::OkStatus();
       }},
      {"help",
       false,
       {},
       [](CliArgs& a, const std::string&) {
         a.help = true;
         return absl::OkStatus();
       }},
      {"watch",
       false,
       {Command::kWorkers, Command::kStatus},
       [](CliArgs& a, const std::string&) {
         a.watch = true;
         return absl::OkStatus();
       }},
      {"interval",
       true,
       {Command::kWorkers, Command::kStatus},
       [](CliArgs& a, const std::string& v) -> absl::Status {
         ASSIGN_OR_RETURN(a.interval_s, PositiveSeconds("--interval", v));
         return absl::OkStatus();
       }},
      {"count",
       true,
       {Command::kWorkers, Command::kStatus},
       [](CliArgs& a, const std::string& v) {
         int64_t n = 0;
         if (!absl::SimpleAtoi(v, &n) || n < 1) {
           return Usage(absl::StrCat("--count needs an integer >= 1, got '", v, "'"));
         }
         a.count = n;
         return absl::OkStatus();
       }},
      {"wait",
       false,
       {Command::kDrain},
       [](CliArgs& a, const std::string&) {
         a.wait = true;
         return absl::OkStatus();
       }},
      {"wait-timeout",
       true,
       {Command::kDrain},
       [](CliArgs& a, const std::string& v) -> absl::Status {
         ASSIGN_OR_RETURN(a.wait_timeout_s, PositiveSeconds("--wait-timeout", v));
         return absl::OkStatus();
       }},
      {"max-tokens",
       true,
       {Command::kGenerate},
       [](CliArgs& a, const std::string& v) {
         int32_t n = 0;
         if (!absl::SimpleAtoi(v, &n) || n < 1) {
           return Usage(absl::StrCat("--max-tokens needs an integer >= 1, got '", v, "'"));
         }
         a.max_tokens = n;
         return absl::OkStatus();
       }},
      {"temperature",
       true,
       {Command::kGenerate},
       [](CliArgs& a, const std::string& v) {
         float t = 0;
         if (!absl::SimpleAtof(v, &t) || !std::isfinite(t) || t < 0) {
           return Usage(absl::StrCat("--temperature needs a number >= 0, got '", v, "'"));
         }
         a.temperature = t;
         return absl::OkStatus();
       }},
      {"seed",
       true,
       {Command::kGenerate},
       [](CliArgs& a, const std::string& v) {
         uint64_t s = 0;
         if (!absl::SimpleAtoi(v, &s)) {
           return Usage(absl::StrCat("--seed needs a non-negative integer, got '", v, "'"));
         }
         a.seed = s;
         return absl::OkStatus();
       }},
  };
  return *options;
}

const OptionSpec* FindOption(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  for (const OptionSpec& spec : Options()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// An option as written, before the command is known.
struct Given {
  const OptionSpec* spec;
  std::string value;
};

// How many positional arguments each command takes, and what it calls them.
std::pair<int, absl::string_view> Positional(Command command) {
  switch (command) {
    case Command::kWorkers:
    case Command::kStatus:
      return {0, ""};
    case Command::kDrain:
    case Command::kUndrain:
    case Command::kRemove:
      return {1, "a worker ID"};
    case Command::kAdd:
      return {1, "a worker address HOST:PORT"};
    case Command::kGenerate:
      return {1, "the prompt TEXT (quote it; - reads it from stdin)"};
  }
  return {0, ""};
}

}  // namespace

absl::string_view CommandName(Command command) {
  for (const auto& [c, name] : kCommands) {
    if (c == command) return name;
  }
  return "?";
}

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<CliArgs> ParseCliArgs(const std::vector<std::string>& args, const EnvLookup& env) {
  CliArgs a;
  auto from_env = [&env](const char* name, std::string& field) {
    std::optional<std::string> v = env(name);
    if (v.has_value() && !v->empty()) field = *v;
  };
  from_env("TESSERA_ROUTER", a.router);
  from_env("TESSERA_ADMIN_TOKEN", a.admin_token);
  from_env("TESSERA_ENDPOINT", a.endpoint);
  from_env("TESSERA_API_KEY", a.api_key);

  // Pass 1: split options (validated against the table) from positionals.
  std::vector<Given> given;
  std::vector<std::string> positionals;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h") {
      a.help = true;
      continue;
    }
    if (arg[1] != '-') return Usage(absl::StrCat("unknown option ", arg));
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const OptionSpec* spec = FindOption(name);
    if (spec == nullptr) return Usage(absl::StrCat("unknown option --", name));
    Given g{spec, ""};
    if (spec->takes_value) {
      if (eq != std::string::npos) {
        g.value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        g.value = args[++i];
      } else {
        return Usage(absl::StrCat("--", spec->name, " needs a value"));
      }
    } else if (eq != std::string::npos) {
      return Usage(absl::StrCat("--", spec->name, " takes no value"));
    }
    given.push_back(std::move(g));
  }

  // The command: the first positional (`help` is a synonym of --help).
  size_t next = 0;
  if (next < positionals.size() && positionals[next] == "help") {
    a.help = true;
    ++next;
  }
  if (next < positionals.size()) {
    a.command = FindCommand(positionals[next]);
    if (!a.command.has_value()) {
      return Usage(absl::StrCat("unknown command '", positionals[next], "'"));
    }
    ++next;
  }

  // Pass 2: apply the options, now that the command is known.
  for (const Given& g : given) {
    if (!g.spec->commands.empty() && a.command.has_value() &&
        std::find(g.spec->commands.begin(), g.spec->commands.end(), *a.command) ==
            g.spec->commands.end()) {
      std::vector<std::string> owners;
      for (Command c : g.spec->commands) owners.emplace_back(CommandName(c));
      return Usage(absl::StrCat("--", g.spec->name, " is an option of ",
                                absl::StrJoin(owners, ", "), ", not of ", CommandName(*a.command)));
    }
    RETURN_IF_ERROR(g.spec->apply(a, g.value));
  }
  if (a.help) return a;

  if (!a.command.has_value()) return Usage("no command given");
  const auto [count, what] = Positional(*a.command);
  const size_t left = positionals.size() - next;
  if (static_cast<int>(left) < count) {
    return Usage(absl::StrCat(CommandName(*a.command), " needs ", what));
  }
  if (static_cast<int>(left) > count) {
    return Usage(absl::StrCat("unexpected argument '", positionals[next + count], "' after ",
                              CommandName(*a.command),
                              *a.command == Command::kGenerate ? " (quote the prompt)" : ""));
  }
  if (count == 1) {
    a.argument = positionals[next];
    if (a.argument.empty()) {
      return Usage(absl::StrCat(CommandName(*a.command), " needs ", what, ", got ''"));
    }
  }
  if (a.command == Command::kGenerate && a.json) {
    return Usage("generate has no --json output (it streams text)");
  }
  if (a.tls_ca.empty() && (!a.tls_cert.empty() || !a.tls_key.empty())) {
    return Usage(absl::StrCat(a.tls_cert.empty() ? "--tls-key" : "--tls-cert",
                              " needs --tls-ca (the CA that signed the endpoint's certificate)"));
  }
  for (const Given& g : given) {
    if (g.spec->name == "wait-timeout" && !a.wait) return Usage("--wait-timeout needs --wait");
    if ((g.spec->name == "interval" || g.spec->name == "count") && !a.watch) {
      return Usage(absl::StrCat("--", g.spec->name, " needs --watch"));
    }
  }
  return a;
}

}  // namespace tessera::cli
