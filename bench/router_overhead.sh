#!/usr/bin/env bash
# Router overhead: the latency tessera-router adds in front of one worker.
# Starts one tessera-worker (--dummy tiny) and a tessera-router in front of
# it, then runs tessera-bench at RATE req/s (Poisson) for DURATION s, REPEATS
# times each way: straight at the worker (Worker.Generate, what the router
# itself calls) and through the router (Llm.Generate on its client port).
# Prints TTFT, inter-token and end-to-end p50/p99 of both (medians over the
# repetitions) and the differences (router-added latency), and the same for
# "TTFT outside the worker" (client TTFT minus the worker's own TTFT from its
# Timings, per request): the router's cost without the worker's queueing,
# which is the steadier figure on a busy machine.
#   bash bench/router_overhead.sh [BUILD_DIR]
# Knobs (environment): RATE (200), DURATION (20), REPEATS (2), PROMPT_LEN
# (32), OUT_TOKENS (8), WARMUP (3 s at the worker, not reported), THREADS
# (worker CPU threads, 0 = auto), KV_BLOCKS (1024); WORKER, ROUTER, BENCH, CLI
# override the binaries' paths.
set -euo pipefail
BUILD_DIR=${1:-build}
RATE=${RATE:-200}
DURATION=${DURATION:-20}
REPEATS=${REPEATS:-2}
PROMPT_LEN=${PROMPT_LEN:-32}
OUT_TOKENS=${OUT_TOKENS:-8}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-0}
KV_BLOCKS=${KV_BLOCKS:-1024}
source "$(dirname "$0")/cluster_lib.sh"

"$WORKER" --dummy tiny --host 127.0.0.1 --port 0 --port-file "$tmp/worker.port" \
  --num-kv-blocks "$KV_BLOCKS" --threads "$THREADS" --log-level warn > "$tmp/worker.log" 2>&1 &
pids+=($!)
wait_file "$tmp/worker.port" "${pids[-1]}" tessera-worker
worker_port=$(tr -dc '0-9' < "$tmp/worker.port")

"$ROUTER" --host 127.0.0.1 --port 0 --admin-port 0 --http-host 127.0.0.1 --http-port 0 --port-file "$tmp/router.port" \
  --workers "127.0.0.1:$worker_port" --log-level warn > "$tmp/router.log" 2>&1 &
pids+=($!)
wait_file "$tmp/router.port" "${pids[-1]}" tessera-router
read -r client_port admin_port http_port < "$tmp/router.port"

# The router places requests once it has polled the worker healthy.
healthy=0
for _ in $(seq 300); do
  healthy=$("$CLI" --router "127.0.0.1:$admin_port" --timeout 2 --json status 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["healthy"])' 2>/dev/null || echo 0)
  [[ $healthy -ge 1 ]] && break
  sleep 0.1
done
[[ $healthy -ge 1 ]] || { echo "the router saw no healthy worker in 30 s" >&2; cat "$tmp"/*.log >&2; exit 1; }

common=(--rate "$RATE" --prompt-len "$PROMPT_LEN" --max-tokens "$OUT_TOKENS" --vocab-size 500
        --timeout 60)
echo "== warm-up: ${WARMUP} s at the worker"
"$BENCH" --target "127.0.0.1:$worker_port" --service worker "${common[@]}" --duration "$WARMUP" \
  --seed 1 > /dev/null || true

# Alternating order (direct, routed, routed, direct, ...) so a slow spell on a
# shared machine does not land on one side only. Distinct seeds: distinct
# random prompts, so no run hits the prefix cache another one filled.
run_direct() {
  echo "== direct #$1: tessera-bench -> tessera-worker (Worker.Generate), $RATE req/s, $DURATION s"
  "$BENCH" --target "127.0.0.1:$worker_port" --service worker "${common[@]}" \
    --duration "$DURATION" --seed "$((100 + $1))" --json "$tmp/direct.$1.json" ||
    echo "(some direct calls failed)"
}
run_routed() {
  echo "== routed #$1: tessera-bench -> tessera-router -> tessera-worker (Llm.Generate), $RATE req/s, $DURATION s"
  "$BENCH" --target "127.0.0.1:$client_port" --service llm "${common[@]}" \
    --duration "$DURATION" --seed "$((200 + $1))" --json "$tmp/routed.$1.json" ||
    echo "(some routed calls failed)"
}
for ((rep = 1; rep <= REPEATS; rep++)); do
  if ((rep % 2)); then
    run_direct "$rep"; run_routed "$rep"
  else
    run_routed "$rep"; run_direct "$rep"
  fi
done

echo "== summary: medians over $REPEATS repetitions (ms)"
python3 - "$tmp" "$REPEATS" <<'PY'
import json, statistics, sys
tmp, reps = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{tmp}/{side}.{i}.json")) for i in range(1, reps + 1)]
        for side in ("direct", "routed")}
def med(side, key, p):
    return statistics.median(j[key][p] for j in runs[side])
print(f"{'':24}{'direct':>10}{'routed':>10}{'added':>10}")
keys = [("ttft_ms", "TTFT"), ("itl_ms", "inter-token"), ("e2e_ms", "end-to-end")]
# TTFT minus the worker's own TTFT, per request: what the path adds without
# the worker's queueing, which a busy machine makes noisy.
if all(j.get("ttft_outside_server_ms") for side in runs for j in runs[side]):
    keys.append(("ttft_outside_server_ms", "TTFT outside worker"))
for key, name in keys:
    for p in ("p50", "p99"):
        a, b = med("direct", key, p), med("routed", key, p)
        print(f"{name + ' ' + p:24}{a:10.2f}{b:10.2f}{b - a:10.2f}")
for side in ("direct", "routed"):
    for i, j in enumerate(runs[side], 1):
        print(f"{side} #{i}: {j['completed']} completed, {j['failed']} failed "
              f"{j['failed_by_code'] or ''}, {j['requests_per_s']:.1f} req/s, "
              f"{j['output_tokens_per_s']:.0f} output tokens/s, TTFT p50/p99 "
              f"{j['ttft_ms']['p50']:.2f}/{j['ttft_ms']['p99']:.2f} ms, "
              f"send lag p99 {j['send_lag_ms']['p99']:.2f} ms")
PY
