// Whether this test was built with AddressSanitizer (the sanitizer build of
// deploy/test.sh, the fuzz build of tests/fuzz/run.sh). Code runs
// several times slower there: a test's checks of throughput (so many cases
// within its time budget) do not hold, its checks of behaviour all do.
#pragma once

namespace tessera::testing {

#if defined(__SANITIZE_ADDRESS__)  // gcc
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

}  // namespace tessera::testing
