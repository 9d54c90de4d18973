// How a GPU test that cannot run here says so. Normally it skips (CI has no
// GPU); on a GPU machine, where a skip would hide that the GPU path did not
// run at all (a driver too old, a library not found), TESSERA_REQUIRE_GPU=1
// turns every such skip into a failure. Header-only; for tests.
#pragma once

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace tessera::testing {

// Whether TESSERA_REQUIRE_GPU=1 is set.
inline bool GpuRequired() {
  const char* v = std::getenv("TESSERA_REQUIRE_GPU");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace tessera::testing

// In a GPU test: skips with `why` (anything streamable), or fails with it
// under TESSERA_REQUIRE_GPU=1. Returns from the current function either way.
#define TESSERA_GPU_TEST_CANNOT_RUN(why)                                          \
  do {                                                                            \
    if (::tessera::testing::GpuRequired()) {                                      \
      GTEST_FAIL() << why << " [TESSERA_REQUIRE_GPU=1: a GPU test may not skip]"; \
    }                                                                             \
    GTEST_SKIP() << why;                                                          \
  } while (0)
