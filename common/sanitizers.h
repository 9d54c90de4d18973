// Whether this translation unit is compiled with AddressSanitizer (and so with
// LeakSanitizer), under GCC (__SANITIZE_ADDRESS__) or clang
// (__has_feature(address_sanitizer)): TESSERA_ASAN is 1 or 0. The sanitizer
// build of deploy/test.sh compiles with clang, the fuzz build too; GCC builds
// with -DTESSERA_SANITIZE=address work alike.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define TESSERA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESSERA_ASAN 1
#endif
#endif
#ifndef TESSERA_ASAN
#define TESSERA_ASAN 0
#endif
