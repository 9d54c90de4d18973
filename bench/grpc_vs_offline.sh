#!/usr/bin/env bash
# gRPC serving overhead: output tokens/s of offline tessera-generate versus
# tessera-worker driven by tessera-bench over gRPC on loopback, on the same
# dummy model, ranks and batch (32 streams of a distinct PROMPT_LEN-token
# prompt and OUT_TOKENS outputs each, greedy, ignore_eos).
#   bash bench/grpc_vs_offline.sh [BUILD_DIR] [PRESET] [TP]
# Prints both rates and their ratio (target >= 0.9). GEN, WORKER and BENCH
# override the binaries' paths; STREAMS, PROMPT_LEN, OUT_TOKENS the workload.
set -euo pipefail
BUILD_DIR=${1:-build}
PRESET=${2:-smollm2-135m}
TP=${3:-1}
STREAMS=${STREAMS:-32}
PROMPT_LEN=${PROMPT_LEN:-32}
OUT_TOKENS=${OUT_TOKENS:-64}
REPEATS=${REPEATS:-3}  # medians are compared
KV_BLOCKS=${KV_BLOCKS:-1024}
GEN=${GEN:-$BUILD_DIR/worker/tessera-generate}
WORKER=${WORKER:-$BUILD_DIR/worker/tessera-worker}
BENCH=${BENCH:-$BUILD_DIR/bench/tessera-bench}
for b in "$GEN" "$WORKER" "$BENCH"; do
  [[ -x $b ]] || { echo "missing $b: build tessera-generate, tessera-worker and tessera-bench" >&2; exit 1; }
done
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none
        --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
tmp=$(mktemp -d)
worker_pid=""
cleanup() {
  if [[ -n $worker_pid ]] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$worker_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The offline prompts: the same distinct random prompts tessera-bench sends
# would be ideal, but only their shape matters for speed (random weights,
# ignore_eos): STREAMS prompts of PROMPT_LEN ids, no shared prefix.
prompts="$tmp/prompts.jsonl"
for ((i = 0; i < STREAMS; i++)); do
  ids="$(( (i * 7919) % 400 + 3 ))"
  for ((k = 1; k < PROMPT_LEN; k++)); do ids="$ids, $(( (i * 7919 + k * 104729) % 497 + 3 ))"; done
  echo "{\"prompt_token_ids\": [$ids], \"max_tokens\": $OUT_TOKENS, \"ignore_eos\": true, \"temperature\": 0}" >> "$prompts"
done

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== offline: tessera-generate --dummy $PRESET, TP=$TP, $STREAMS requests, median of $REPEATS"
offline_rates=()
for ((rep = 0; rep < REPEATS; rep++)); do
  offline_line=$("${MPIRUN[@]}" -np "$TP" "$GEN" --dummy "$PRESET" --prompts "$prompts" \
                   --num-kv-blocks "$KV_BLOCKS" --log-level info 2>&1 >/dev/null |
                 grep "output tokens/s" | tail -1)
  echo "$offline_line"
  offline_rates+=("$(echo "$offline_line" | sed -E 's/.* ([0-9.]+) output tokens\/s.*/\1/')")
done
offline=$(printf "%s\n" "${offline_rates[@]}" | median)

echo "== gRPC: tessera-worker --dummy $PRESET, TP=$TP + tessera-bench --concurrency $STREAMS"
port_file="$tmp/port"
"${MPIRUN[@]}" -np "$TP" "$WORKER" --dummy "$PRESET" --host 127.0.0.1 --port 0 \
  --port-file "$port_file" --num-kv-blocks "$KV_BLOCKS" --log-level warn > "$tmp/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 600); do
  [[ -s $port_file ]] && break
  kill -0 "$worker_pid" 2>/dev/null || { cat "$tmp/worker.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s $port_file ]] || { echo "the worker wrote no port file in 60 s" >&2; cat "$tmp/worker.log" >&2; exit 1; }
port=$(awk '{print $1}' "$port_file")
# Each repetition sends other random prompts (--seed), so none hits the
# prefix cache that the previous one filled.
grpc_rates=()
for ((rep = 0; rep < REPEATS; rep++)); do
  bench_out=$("$BENCH" --target "127.0.0.1:$port" --concurrency "$STREAMS" --requests "$STREAMS" \
                --prompt-len "$PROMPT_LEN" --max-tokens "$OUT_TOKENS" --vocab-size 500 \
                --seed "$((rep + 1))")
  echo "$bench_out"
  grpc_rates+=("$(echo "$bench_out" | sed -n -E 's/^output tokens\/s: ([0-9.]+).*/\1/p')")
done
grpc=$(printf "%s\n" "${grpc_rates[@]}" | median)

echo "== summary"
awk -v o="$offline" -v g="$grpc" -v p="$PRESET" -v tp="$TP" 'BEGIN {
  printf "%s TP=%d: offline %.1f tok/s, gRPC %.1f tok/s, gRPC / offline = %.2f (target >= 0.9)\n",
         p, tp, o, g, g / o }'
