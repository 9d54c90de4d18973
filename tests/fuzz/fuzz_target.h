// The entry points every fuzz target in tests/fuzz defines, as libFuzzer
// declares them. Under -DTESSERA_FUZZ=ON (clang) libFuzzer drives a target;
// in every other build replay_main.cc runs it over its seed corpus, so the
// corpora are replayed by ctest (under ASan + UBSan in deploy/test.sh's
// sanitizer build).
//
// A target must be deterministic for a given input, must not leak between
// inputs, and must treat every outcome the code under test promises (an
// error Status) as a pass: only a crash, a sanitizer report, an exception
// escaping, a broken invariant (std::abort via TESSERA_FUZZ_CHECK) or a
// hang is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv);
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Aborts (a finding) when `cond` is false, naming the condition.
#define TESSERA_FUZZ_CHECK(cond)                                                             \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
