// Whether this test was built with AddressSanitizer (the sanitizer build of
// deploy/test.sh, the fuzz build of tests/fuzz/run.sh). Code runs
// several times slower there: a test's checks of throughput (so many cases
// within its time budget) do not hold, its checks of behaviour all do.
#pragma once

#include "common/sanitizers.h"

namespace tessera::testing {

inline constexpr bool kSanitizerBuild = TESSERA_ASAN != 0;

}  // namespace tessera::testing
