// TESSERA_CHECK(cond, msg...): aborts with file, line, the condition and the
// StrCat of `msg...` when `cond` is false. For programming errors (broken
// contracts), never for bad input, which is an absl::Status. Always on.
// Thread-safe.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

#define TESSERA_CHECK(cond, ...)                                                                \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      ::tessera::internal::CheckFailed(__FILE__, __LINE__, #cond, ::absl::StrCat(__VA_ARGS__)); \
    }                                                                                           \
  } while (0)

namespace tessera::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace tessera::internal
