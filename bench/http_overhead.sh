#!/usr/bin/env bash
# OpenAI HTTP API overhead and load: what the router's HTTP front end
# (POST /v1/completions, SSE) costs against its gRPC one (Llm.Generate), and
# how it holds 1,000 concurrent streams.
# Starts one tessera-worker (--dummy tiny) and a tessera-router in front of it
# with --http-port 0, then:
#  1. compare: tessera-bench in closed loop (CONCURRENCY streams, DURATION s,
#     PROMPT_LEN-token prompts, OUT_TOKENS output tokens) through the router's
#     gRPC port (--service llm) and through its HTTP port (--api openai),
#     REPEATS times each way in alternating order; prints TTFT, inter-token
#     and end-to-end p50/p99 of both (medians over the repetitions) and the
#     HTTP-minus-gRPC difference. The HTTP client opens one connection per
#     call, so its TTFT includes a loopback TCP connect.
#  2. load: LOAD_CONCURRENCY (1,000) concurrent streaming requests through
#     --api openai, LOAD_REQUESTS (1,500) in all; prints the errors (must be
#     0) and the router's RSS (VmRSS) and open file descriptors before, at the
#     peak (sampled every 0.1 s while the load runs) and SETTLE s after it;
#     LOAD_ROUNDS (2) rounds, so that memory the allocator keeps after the
#     first (flat in the second) can be told from a leak (growing each round).
# Exits 1 when a load-phase request failed.
#   bash bench/http_overhead.sh [BUILD_DIR]
# Knobs (environment): CONCURRENCY (8), RATE (0: closed loop; else requests/s
# evenly spaced instead of CONCURRENCY), DURATION (10), REPEATS (2),
# PROMPT_LEN (8), OUT_TOKENS (16), LOAD_CONCURRENCY (1000), LOAD_REQUESTS
# (1500), LOAD_OUT_TOKENS (OUT_TOKENS), LOAD_ROUNDS (2), SETTLE (5), THREADS (worker CPU
# threads, 1), KV_BLOCKS (4096), MAX_NUM_SEQS (256), MODEL_ARGS (the worker's
# model, "--dummy tiny"; e.g. "--model ../shared/models/stories260K", whose
# tokens all decode to text, so the first SSE chunk is the first token);
# WORKER, ROUTER, BENCH,
# CLI override the binaries' paths.
set -euo pipefail
BUILD_DIR=${1:-build}
CONCURRENCY=${CONCURRENCY:-8}
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-2}
PROMPT_LEN=${PROMPT_LEN:-8}
OUT_TOKENS=${OUT_TOKENS:-16}
LOAD_CONCURRENCY=${LOAD_CONCURRENCY:-1000}
LOAD_REQUESTS=${LOAD_REQUESTS:-1500}
LOAD_OUT_TOKENS=${LOAD_OUT_TOKENS:-$OUT_TOKENS}
LOAD_ROUNDS=${LOAD_ROUNDS:-2}
SETTLE=${SETTLE:-5}
THREADS=${THREADS:-1}
KV_BLOCKS=${KV_BLOCKS:-4096}
MAX_NUM_SEQS=${MAX_NUM_SEQS:-256}
read -r -a model_args <<< "${MODEL_ARGS:---dummy tiny}"
source "$(dirname "$0")/cluster_lib.sh"

"$WORKER" "${model_args[@]}" --host 127.0.0.1 --port 0 --port-file "$tmp/worker.port" \
  --num-kv-blocks "$KV_BLOCKS" --max-num-seqs "$MAX_NUM_SEQS" --threads "$THREADS" \
  --log-level warn > "$tmp/worker.log" 2>&1 &
pids+=($!)
wait_file "$tmp/worker.port" "${pids[-1]}" tessera-worker
worker_port=$(tr -dc '0-9' < "$tmp/worker.port")

"$ROUTER" --host 127.0.0.1 --port 0 --admin-port 0 --http-host 127.0.0.1 --http-port 0 \
  --port-file "$tmp/router.port" --workers "127.0.0.1:$worker_port" \
  --max-concurrent-requests 2048 --log-level warn > "$tmp/router.log" 2>&1 &
router_pid=$!
pids+=("$router_pid")
wait_file "$tmp/router.port" "$router_pid" tessera-router
read -r client_port admin_port http_port < "$tmp/router.port"
[[ -n ${http_port:-} && $http_port != 0 ]] || { echo "the router's port file has no HTTP port" >&2; exit 1; }

healthy=0
for _ in $(seq 300); do
  healthy=$("$CLI" --router "127.0.0.1:$admin_port" --timeout 2 --json status 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["healthy"])' 2>/dev/null || echo 0)
  [[ $healthy -ge 1 ]] && break
  sleep 0.1
done
[[ $healthy -ge 1 ]] || { echo "the router saw no healthy worker in 30 s" >&2; tail -n 20 "$tmp"/*.log >&2; exit 1; }

# Closed loop of CONCURRENCY streams, or RATE requests/s evenly spaced (the
# latency added at a load the worker keeps up with, without queueing).
arrivals=(--concurrency "$CONCURRENCY")
if [[ ${RATE:-0} != 0 ]]; then arrivals=(--fixed-rate "$RATE"); fi
common=("${arrivals[@]}" --duration "$DURATION" --prompt-len "$PROMPT_LEN"
        --max-tokens "$OUT_TOKENS" --vocab-size 500 --timeout 60)
echo "== warm-up: 2 s each way"
"$BENCH" --target "127.0.0.1:$client_port" --service llm "${common[@]}" --duration 2 --seed 1 > /dev/null || true
"$BENCH" --target "127.0.0.1:$http_port" --api openai "${common[@]}" --duration 2 --seed 2 > /dev/null || true

run_grpc() {
  echo "== gRPC #$1: tessera-bench -> router Llm.Generate, concurrency $CONCURRENCY, $DURATION s"
  "$BENCH" --target "127.0.0.1:$client_port" --service llm "${common[@]}" \
    --seed "$((100 + $1))" --json "$tmp/grpc.$1.json" > /dev/null || echo "(some gRPC calls failed)"
}
run_http() {
  echo "== HTTP #$1: tessera-bench --api openai -> router POST /v1/completions, concurrency $CONCURRENCY, $DURATION s"
  "$BENCH" --target "127.0.0.1:$http_port" --api openai "${common[@]}" \
    --seed "$((200 + $1))" --json "$tmp/http.$1.json" > /dev/null || echo "(some HTTP calls failed)"
}
for ((rep = 1; rep <= REPEATS; rep++)); do
  if ((rep % 2)); then run_grpc "$rep"; run_http "$rep"; else run_http "$rep"; run_grpc "$rep"; fi
done

echo "== compare: medians over $REPEATS repetitions (ms)"
python3 - "$tmp" "$REPEATS" <<'PY'
import json, statistics, sys
tmp, reps = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{tmp}/{side}.{i}.json")) for i in range(1, reps + 1)]
        for side in ("grpc", "http")}
def med(side, key, p):
    return statistics.median(j[key][p] for j in runs[side])
print(f"{'':18}{'gRPC':>10}{'HTTP':>10}{'HTTP-gRPC':>11}")
for key, name in [("ttft_ms", "TTFT"), ("itl_ms", "inter-token"), ("e2e_ms", "end-to-end")]:
    for p in ("p50", "p99"):
        a, b = med("grpc", key, p), med("http", key, p)
        print(f"{name + ' ' + p:18}{a:10.2f}{b:10.2f}{b - a:11.2f}")
for side in ("grpc", "http"):
    for i, j in enumerate(runs[side], 1):
        print(f"{side} #{i}: {j['completed']} completed, {j['failed']} failed "
              f"{j['failed_by_code'] or ''}, {j['requests_per_s']:.1f} req/s, "
              f"{j['output_tokens_per_s']:.0f} output tokens/s")
PY

# ---- load phase
rss() { awk '/^VmRSS/ {print $2}' "/proc/$router_pid/status"; }
fds() { ls "/proc/$router_pid/fd" 2>/dev/null | wc -l; }
rss_first=$(rss)
load_fail=0
for ((round = 1; round <= LOAD_ROUNDS; round++)); do
rss_before=$(rss); fds_before=$(fds)
echo "== load round $round/$LOAD_ROUNDS: $LOAD_CONCURRENCY concurrent streams via --api openai, $LOAD_REQUESTS requests, $LOAD_OUT_TOKENS output tokens each"
"$BENCH" --target "127.0.0.1:$http_port" --api openai --concurrency "$LOAD_CONCURRENCY" \
  --requests "$LOAD_REQUESTS" --prompt-len "$PROMPT_LEN" --max-tokens "$LOAD_OUT_TOKENS" \
  --vocab-size 500 --timeout 120 --seed "$((300 + round))" --json "$tmp/load.json" > "$tmp/load.txt" 2>&1 &
bench_pid=$!
pids+=("$bench_pid")
rss_peak=$rss_before; fds_peak=$fds_before
# Bounded: the bench's calls have a 120 s deadline.
for _ in $(seq 1800); do
  kill -0 "$bench_pid" 2>/dev/null || break
  r=$(rss); f=$(fds)
  ((r > rss_peak)) && rss_peak=$r
  ((f > fds_peak)) && fds_peak=$f
  sleep 0.1
done
load_rc=0
wait "$bench_pid" || load_rc=$?
sleep "$SETTLE"
rss_after=$(rss); fds_after=$(fds)
kill -0 "$router_pid" 2>/dev/null || { echo "the router died during the load" >&2; tail -n 30 "$tmp/router.log" >&2; exit 1; }
grep -E "^(requests|failed|wall|requests/s|output tokens/s|TTFT|end-to-end)" "$tmp/load.txt" || true
grep "a call failed" "$tmp/load.txt" | head -5 || true
python3 - "$tmp/load.json" "$rss_before" "$rss_peak" "$rss_after" "$fds_before" "$fds_peak" "$fds_after" "$rss_first" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rb, rp, ra, fb, fp, fa, r0 = map(int, sys.argv[2:9])
print(f"load: {j['requests']} requests, {j['completed']} completed, errors {j['failed']} "
      f"{j['failed_by_code'] or ''}")
print(f"router RSS: before {rb / 1024:.1f} MiB, peak {rp / 1024:.1f} MiB (+{(rp - rb) / 1024:.1f}), "
      f"after {ra / 1024:.1f} MiB (+{(ra - rb) / 1024:.1f} over this round's start, "
      f"+{(ra - r0) / 1024:.1f} over the first)")
print(f"router open fds: before {fb}, peak {fp}, after {fa}")
PY
if [[ $load_rc -ne 0 ]]; then
  echo "load round $round: FAIL (tessera-bench exit $load_rc)"
  tail -n 20 "$tmp/router.log" >&2
  load_fail=1
fi
done
[[ $load_fail -eq 0 ]] || exit 1
echo "load phase: PASS (0 errors)"
