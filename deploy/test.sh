#!/usr/bin/env bash
# Installs what is missing, builds Tessera and runs every test suite (.ci/run runs this).
#   bash deploy/test.sh                               # all labels, ASan + UBSan build (CI's)
#   TESSERA_TEST_LABELS=unit bash deploy/test.sh
#   TESSERA_SANITIZE= bash deploy/test.sh             # all labels, Release build (build/)
#
# One build serves every test. By default it is instrumented with AddressSanitizer +
# UndefinedBehaviorSanitizer (build-asan/; cmake/sanitizers.cmake), compiled by clang: the
# code under test at -O1 -g1, the test sources at -O0 -g1 (they are over half of the
# compile time), every finding fatal. The CUDA kernels compile with it for sm_90 whenever
# nvcc is found (nvcc code is not instrumented). Timings on 2 cores: bench/RESULTS.md,
# "Sanitizer build in CI".
#
# Sanitized runs: every process — also the tessera-worker / tessera-router / mpirun
# children the integration tests start — writes its reports to $BUILD_DIR/sanitizer-logs/
# (log_path), and a report there fails the run even when the test that started the
# process did not notice. LeakSanitizer suppressions: tests/sanitizers/lsan.supp (Open
# MPI's own leaks, and OpenSSL's per-thread state at exit; the file says why).
#
# Environment: TESSERA_SANITIZE (a -fsanitize= list; unset: address,undefined; empty: none,
# a Release build), BUILD_DIR (build-asan when sanitizing, else build), JOBS (build jobs,
# default: cores), TEST_JOBS (ctest -j, default 2; the timing-sensitive tests take 2
# slots, so they run alone), TESSERA_TEST_LABELS (a ctest -L regex), TESSERA_TEST_EXCLUDE
# (a ctest -E regex), CMAKE_ARGS (more cmake options).
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
SANITIZE=${TESSERA_SANITIZE-address,undefined}
JOBS=${JOBS:-$(nproc)}
if [ -n "$SANITIZE" ]; then
  BUILD_DIR=${BUILD_DIR:-build-asan}
  build_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1"
              "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DTESSERA_SANITIZE=$SANITIZE"
              -DTESSERA_TEST_CXX_FLAGS=-O0)
  # clang, where installed (deploy/install-deps.sh installs it): the whole build takes ~27
  # instead of ~35 min on 2 cores (bench/RESULTS.md, "Sanitizer build in CI"), keeping CI's
  # one build within its budget. nvcc keeps g++ as its host compiler. Our OpenMP code then
  # runs on LLVM's libomp while the OpenMP build of OpenBLAS keeps GCC's libgomp: two
  # runtimes in one process, which deadlock once both run thread teams (engine_loop_test
  # hangs); so the tests run with OMP_NUM_THREADS=1 (code that asks for threads, like
  # tessera-worker --threads, still gets them from libomp).
  if command -v clang++ > /dev/null && command -v clang > /dev/null; then
    build_args+=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
                 -DCMAKE_CUDA_HOST_COMPILER=g++)
    export OMP_NUM_THREADS=1
  fi
else
  BUILD_DIR=${BUILD_DIR:-build}
  build_args=(-DCMAKE_BUILD_TYPE=Release -DTESSERA_SANITIZE= -DTESSERA_TEST_CXX_FLAGS=)
fi
launcher=()
if command -v ccache > /dev/null; then  # optional: reuses objects across builds
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
            -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
start=$(date +%s)
# CUDA (when nvcc is found) for sm_90, the H100/H200 the GPU bundle and its test
# (tests/deploy/gpu_bundle_test) target; CMAKE_ARGS may override it.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90 "${build_args[@]}" \
  "${launcher[@]}" ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$JOBS"
built=$(date +%s)

# The official `openai` SDK (npm) for the HTTP API's tests.
TESSERA_TEST_CLIENTS=$(bash deploy/install-test-clients.sh "$BUILD_DIR/test-clients")
export TESSERA_TEST_CLIENTS

logs="$(pwd)/$BUILD_DIR/sanitizer-logs"
if [ -n "$SANITIZE" ]; then
  rm -rf "$logs"
  mkdir -p "$logs"
  # protect_shadow_gap=0: the CUDA runtime maps memory in ASan's shadow gap (a GPU run).
  export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:protect_shadow_gap=0"
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
fi

ctest_args=(--test-dir "$BUILD_DIR" -j"${TEST_JOBS:-2}" --output-on-failure --timeout 600)
if [ -n "${TESSERA_TEST_LABELS:-}" ]; then ctest_args+=(-L "$TESSERA_TEST_LABELS"); fi
if [ -n "${TESSERA_TEST_EXCLUDE:-}" ]; then ctest_args+=(-E "$TESSERA_TEST_EXCLUDE"); fi
status=0
ctest "${ctest_args[@]}" || status=$?

if [ -n "$SANITIZE" ]; then
  # A log that only says LeakSanitizer's own tracer crashed ("Tracer caught signal 11";
  # seen in 2 processes of one run on 2 busy cores, cause not established) is a failure of
  # the tool, not a finding: it is shown, and does not fail the run. Any other log does.
  tool_failure='^(Tracer caught signal [0-9]+: .*|==[0-9]+==LeakSanitizer has encountered a fatal error\.|==[0-9]+==HINT: .*)$'
  for r in $(find "$logs" -type f | sort); do
    if ! grep -Evq "$tool_failure" "$r"; then
      echo "test.sh: warning: LeakSanitizer could not check one process (its tracer crashed): $r" >&2
      cat "$r" >&2
      continue
    fi
    echo "---- sanitizer report (from a test or a process it started): $r" >&2
    head -60 "$r" >&2
    status=1
  done
fi
echo "test.sh: ${SANITIZE:+sanitizers $SANITIZE, }build $((built - start)) s," \
  "tests $(($(date +%s) - built)) s (load $(cut -d' ' -f1-3 /proc/loadavg)); exit $status"
exit "$status"
