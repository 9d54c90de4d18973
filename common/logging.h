// Process-wide logging through spdlog, to stderr. `InitLogging` sets the pattern and level
// once at start-up (thread-safe after that: spdlog's default logger is
// thread-safe). Use spdlog::info/warn/error directly elsewhere.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

// Debian's Abseil has its own string_view type: teach fmt (spdlog) to print it
// and absl::Status.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};
template <>
struct fmt::formatter<absl::Status> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(const absl::Status& s, FormatContext& ctx) const {
    const std::string text = s.ToString();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text), ctx);
  }
};

namespace tessera {

// `level`: trace, debug, info, warn, error, critical, off. `tag` is printed on
// every line (e.g. "worker r0") so interleaved multi-rank logs stay readable.
absl::Status InitLogging(absl::string_view level, absl::string_view tag);

}  // namespace tessera
