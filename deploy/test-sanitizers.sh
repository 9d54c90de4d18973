#!/usr/bin/env bash
# The AddressSanitizer + UndefinedBehaviorSanitizer build of the test suites (deploy/test.sh
# runs it after the Release build; TESSERA_SANITIZERS=0 skips it there). CPU only (CUDA off),
# -O1 -g, every finding fatal (-fno-sanitize-recover=all, cmake/sanitizers.cmake); the benches
# are not built. Runs the labels in $SANITIZER_TEST_LABELS (default unit|integration, which
# includes the fuzz targets' seed corpora, fuzz_*_replay; add |mpi for the MPI suites) but not
# gpu_bundle_test (it bundles the CUDA build).
#
# Every sanitized process, also the tessera-worker / tessera-router children the integration
# tests start, writes its reports to $BUILD_DIR/sanitizer-logs/ (log_path): a report there
# fails the run even when the test that started the process did not notice. LeakSanitizer
# suppressions: tests/sanitizers/lsan.supp (Open MPI's own leaks only).
#   bash deploy/test-sanitizers.sh
#   SANITIZER_TEST_LABELS=unit bash deploy/test-sanitizers.sh
# Environment: SANITIZER_BUILD_DIR (build-asan), JOBS (cores), SANITIZER_TEST_LABELS,
# SANITIZER_TEST_EXCLUDE (a ctest -E regex; empty: none), SANITIZER_CMAKE_ARGS (more cmake -D options).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${SANITIZER_BUILD_DIR:-build-asan}
JOBS=${JOBS:-$(nproc)}
LABELS=${SANITIZER_TEST_LABELS:-unit|integration}
EXCLUDE=${SANITIZER_TEST_EXCLUDE-^gpu_bundle_test$}
launcher=()
if command -v ccache > /dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
start=$(date +%s)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
  -DTESSERA_CUDA=OFF -DTESSERA_BUILD_BENCH=OFF -DTESSERA_SANITIZE=address,undefined \
  "${launcher[@]}" ${SANITIZER_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$JOBS"
built=$(date +%s)

logs="$(pwd)/$BUILD_DIR/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
supp="$(pwd)/tests/sanitizers/lsan.supp"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"

exclude_args=()
if [ -n "$EXCLUDE" ]; then exclude_args=(-E "$EXCLUDE"); fi
status=0
ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 600 -L "$LABELS" -LE gpu \
  "${exclude_args[@]}" || status=$?

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo "test-sanitizers: sanitizer reports (from the tests or the processes they started):" >&2
  for r in $reports; do
    echo "---- $r" >&2
    head -60 "$r" >&2
  done
  status=1
fi
echo "test-sanitizers: build $((built - start)) s, tests $(($(date +%s) - built)) s" \
  "(load $(cut -d' ' -f1-3 /proc/loadavg)); exit $status"
exit "$status"
