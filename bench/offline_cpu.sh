#!/usr/bin/env bash
# Offline output tokens/s of tessera-generate on the CPU path, on a dummy model
# shape (default smollm2-135m), at batch 1, 8 and 32 and TP 1 and 2.
#   bash bench/offline_cpu.sh [BUILD_DIR] [PRESET]
# Each request: a distinct PROMPT_LEN-token prompt (default 8), OUT_TOKENS
# output tokens (default 64, ignore_eos). Output tokens/s is end to end (the
# prefill steps count), so longer prompts lower the batch-32 figure: the
# batch-32 run prefills 32x the tokens of the batch-1 run. RESULTS.md lists
# PROMPT_LEN=8 and PROMPT_LEN=32.
# Prints one line per configuration and the batch-32 / batch-1 speed-up.
set -euo pipefail
BUILD_DIR=${1:-build}
PRESET=${2:-smollm2-135m}
OUT_TOKENS=${OUT_TOKENS:-64}
PROMPT_LEN=${PROMPT_LEN:-8}
REPEATS=${REPEATS:-3}  # the median run is reported
BIN="$BUILD_DIR/worker/tessera-generate"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none
        --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make_prompts() {  # $1 = batch size
  local f="$tmp/prompts_$1.jsonl"
  : > "$f"
  for ((i = 0; i < $1; i++)); do
    ids="1"
    for ((k = 1; k < PROMPT_LEN; k++)); do ids="$ids, $(( (i * 7919 + k * 104729) % 40000 + 300 ))"; done
    echo "{\"prompt_token_ids\": [$ids], \"max_tokens\": $OUT_TOKENS, \"ignore_eos\": true}" >> "$f"
  done
  echo "$f"
}

declare -A tps
echo "prompt $PROMPT_LEN tokens, $OUT_TOKENS output tokens per request"
printf "%-14s %3s %6s %14s\n" preset tp batch "out tokens/s"
for tp in 1 2; do
  for batch in 1 8 32; do
    prompts=$(make_prompts "$batch")
    rates=()
    for ((rep = 0; rep < REPEATS; rep++)); do
      line=$("${MPIRUN[@]}" -np "$tp" "$BIN" --dummy "$PRESET" --prompts "$prompts" \
               --num-kv-blocks 1024 --log-level info 2>&1 >/dev/null | grep "output tokens/s" | tail -1)
      rates+=("$(echo "$line" | sed -E 's/.* ([0-9.]+) output tokens\/s.*/\1/')")
    done
    rate=$(printf "%s\n" "${rates[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    tps[$tp,$batch]=$rate
    printf "%-14s %3d %6d %14s\n" "$PRESET" "$tp" "$batch" "$rate"
  done
done
for tp in 1 2; do
  awk -v a="${tps[$tp,32]}" -v b="${tps[$tp,1]}" -v tp="$tp" \
    'BEGIN { printf "TP=%d: batch 32 / batch 1 = %.1fx (target >= 8x)\n", tp, a / b }'
done
