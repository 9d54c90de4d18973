#!/usr/bin/env bash
# Installs what is missing, builds Tessera and runs every test suite.
#   bash deploy/test.sh                 # all labels
#   TESSERA_TEST_LABELS=unit bash deploy/test.sh
#   TESSERA_SANITIZERS=1 bash deploy/test.sh   # also the ASan + UBSan stage
# Environment: BUILD_DIR (default build), JOBS (default: cores), CMAKE_ARGS; the sanitizer
# stage's in deploy/test-sanitizers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
# CUDA (when nvcc is found) for sm_90, the H100/H200 the GPU bundle and its
# test (tests/deploy/gpu_bundle_test) target; CMAKE_ARGS may override it.
launcher=()
if command -v ccache > /dev/null; then  # optional: reuses objects across builds
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  "${launcher[@]}" ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$JOBS"

# The official `openai` SDK (npm) for the HTTP API's tests.
TESSERA_TEST_CLIENTS=$(bash deploy/install-test-clients.sh "$BUILD_DIR/test-clients")
export TESSERA_TEST_CLIENTS

label_args=()
if [ -n "${TESSERA_TEST_LABELS:-}" ]; then label_args=(-L "$TESSERA_TEST_LABELS"); fi
ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 600 "${label_args[@]}"

# Then, when asked, the AddressSanitizer + UndefinedBehaviorSanitizer build of the unit and
# integration tests (its own build dir, CUDA off). Opt-in for now: its time on CI's 2-core
# machine has not been measured yet, and CI must stay well inside its budget.
if [ "${TESSERA_SANITIZERS:-0}" = "1" ]; then
  bash deploy/test-sanitizers.sh
fi
