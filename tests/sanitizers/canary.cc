// Deliberate bugs, one per argument, that the sanitizer build must report: the
// canary tests (tests/sanitizers/CMakeLists.txt) pass only when the report
// appears, so a build whose instrumentation or options silently stopped working
// fails instead of passing every test unchecked.
//   canary heap-use-after-free | signed-overflow | leak
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Opaque to the optimiser: the values come from the command line.
int FromArg(const char* text) { return static_cast<int>(std::strtol(text, nullptr, 10)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s heap-use-after-free|signed-overflow|leak\n", argv[0]);
    return 2;
  }
  const std::string what = argv[1];
  const int n = FromArg(argc > 2 ? argv[2] : "1");
  if (what == "heap-use-after-free") {
    int* values = new int[4]{1, 2, 3, 4};
    delete[] values;
    return values[n % 4];  // AddressSanitizer: heap-use-after-free
  }
  if (what == "signed-overflow") {
    const int big = 2147483647 - 1 + n;  // INT_MAX for n == 1
    return big + n > 0 ? 0 : 1;          // runtime error: signed integer overflow
  }
  if (what == "leak") {
    void* lost = std::malloc(static_cast<size_t>(64 + n));
    std::memset(lost, n, 64);
    std::printf("%p\n", lost);
    lost = nullptr;  // LeakSanitizer: detected memory leaks
    return 0;
  }
  std::fprintf(stderr, "unknown canary %s\n", what.c_str());
  return 2;
}
