#include "common/logging.h"

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace tessera {

absl::Status InitLogging(absl::string_view level, absl::string_view tag) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level: unknown level '", level,
                     "' (expected trace, debug, info, warn, error, critical or off)"));
  }
  // Logs go to stderr: stdout carries results (e.g. tessera-generate --json).
  if (spdlog::get("tessera") == nullptr) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("tessera"));
  }
  spdlog::set_level(lvl);
  spdlog::set_pattern(absl::StrCat("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] [", tag, "] %v"));
  return absl::OkStatus();
}

}  // namespace tessera
