#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, tests/fuzz/CMakeLists.txt) and runs each
# for a bounded time from its seed corpus, then prints executions, coverage and findings per
# target. Exits 1 when any target found a crash, leak, timeout or out-of-memory input; the
# inputs are kept in $BUILD_DIR/fuzz-artifacts/<target>/ (replay one with
# `$BUILD_DIR/tests/fuzz/<target> FILE`).
#   bash tests/fuzz/run.sh                       # every target, 60 s each
#   FUZZ_SECONDS=300 FUZZ_TARGETS="chat_template_fuzz" bash tests/fuzz/run.sh
# Environment: FUZZ_SECONDS (60), FUZZ_TARGETS (all), BUILD_DIR (build-fuzz), JOBS (cores),
# FUZZ_MAX_LEN (libFuzzer -max_len; default: its own, at least the largest seed),
# FUZZ_NO_BUILD=1 (run the targets already in $BUILD_DIR).
# The seeds in tests/fuzz/corpus/ are only read: each run grows a copy in
# $BUILD_DIR/fuzz-corpus/<target>/, which later runs start from.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
ALL_TARGETS="safetensors_fuzz model_config_fuzz tokenizer_json_fuzz chat_template_fuzz
  http_request_fuzz generate_request_fuzz"
FUZZ_TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}

for tool in clang clang++; do
  if ! command -v "$tool" > /dev/null; then
    echo "run.sh: $tool not found (bash deploy/install-deps.sh installs it)" >&2
    exit 2
  fi
done
if [ "${FUZZ_NO_BUILD:-0}" != "1" ]; then
  launcher=()
  if command -v ccache > /dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  # -O1 with line tables only: quick to build, and the reports still name file and line.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" -DTESSERA_CUDA=OFF \
    -DTESSERA_BUILD_BENCH=OFF -DTESSERA_FUZZ=ON -DTESSERA_SANITIZE=address,undefined \
    "${launcher[@]}" > "$BUILD_DIR.configure.log" 2>&1 ||
    { cat "$BUILD_DIR.configure.log" >&2; exit 2; }
  # shellcheck disable=SC2086  # the target list is meant to split
  cmake --build "$BUILD_DIR" -j"$JOBS" --target $FUZZ_TARGETS
fi

dict_for() {
  case "$1" in
    safetensors_fuzz | model_config_fuzz | tokenizer_json_fuzz) echo tests/fuzz/dict/json.dict ;;
    chat_template_fuzz) echo tests/fuzz/dict/chat_template.dict ;;
    http_request_fuzz) echo tests/fuzz/dict/http_request.dict ;;
    *) echo "" ;;
  esac
}

# Leaks are findings; UBSan reports abort (the build has -fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

summary=()
failed=0
for target in $FUZZ_TARGETS; do
  name=${target%_fuzz}
  corpus="$BUILD_DIR/fuzz-corpus/$target"
  artifacts="$BUILD_DIR/fuzz-artifacts/$target"
  log="$BUILD_DIR/fuzz-logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  dict=$(dict_for "$target")
  if [ -n "$dict" ]; then args+=(-dict="$dict"); fi
  if [ -n "${FUZZ_MAX_LEN:-}" ]; then args+=(-max_len="$FUZZ_MAX_LEN"); fi
  echo "== $target: ${FUZZ_SECONDS}s from tests/fuzz/corpus/$name (log: $log)"
  status=0
  "$BUILD_DIR/tests/fuzz/$target" "${args[@]}" "$corpus" "tests/fuzz/corpus/$name" \
    > "$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  corpus_size=$(find "$corpus" -type f | wc -l)
  findings=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
  if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
    failed=1
    tail -40 "$log" >&2
  fi
  summary+=("$(printf '%-24s execs %-10s %-22s corpus %-6s findings %s (exit %s)' "$target" \
    "${execs:-?}" "${cov:-cov: ?}" "$corpus_size" "$findings" "$status")")
done

echo
echo "fuzz summary (${FUZZ_SECONDS}s per target, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
