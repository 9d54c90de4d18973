#!/usr/bin/env bash
# Placement policies compared: prefix, round_robin and least_load on the
# shared-prefix workload. For each policy it starts 3 fresh tessera-workers
# (--dummy tiny, empty caches) and a tessera-router --policy POLICY, runs
# tessera-bench --workload shared-prefix through the router at RATE req/s
# (Poisson) for DURATION s, and prints per policy: the prefix-cache hit rate
# over the run (the router's counters, via its admin port; and from the
# responses' usage), requests/s, output tokens/s, TTFT p50/p99 and how the
# requests spread over the workers.
#   bash bench/placement.sh [BUILD_DIR]
# The KV cache is sized so that one worker cannot hold every group's prefix
# but the cluster can: PREFIX_GROUPS x PREFIX_LEN/16 blocks of prefixes in all
# (384 by default), KV_BLOCKS (224) per worker. The default rate suits a small
# CPU box; raise it on a bigger one. Knobs (environment): POLICIES ("prefix
# round_robin least_load"), RATE (8), DURATION (20), PREFIX_GROUPS (24),
# PREFIX_LEN (256), SUFFIX_LEN (32), OUT_TOKENS (16), KV_BLOCKS (224), THREADS
# (1 per worker); WORKER, ROUTER, BENCH, CLI override the binaries' paths.
set -euo pipefail
BUILD_DIR=${1:-build}
POLICIES=${POLICIES:-prefix round_robin least_load}
RATE=${RATE:-8}
DURATION=${DURATION:-20}
PREFIX_GROUPS=${PREFIX_GROUPS:-24}
PREFIX_LEN=${PREFIX_LEN:-256}
SUFFIX_LEN=${SUFFIX_LEN:-32}
OUT_TOKENS=${OUT_TOKENS:-16}
KV_BLOCKS=${KV_BLOCKS:-224}
THREADS=${THREADS:-1}
NUM_WORKERS=3
source "$(dirname "$0")/cluster_lib.sh"

# run_policy POLICY: a fresh cluster, one bench run, the cluster stopped.
run_policy() {
  local policy=$1 workers="" i port
  rm -f "$tmp"/*.port
  for ((i = 0; i < NUM_WORKERS; i++)); do
    "$WORKER" --dummy tiny --host 127.0.0.1 --port 0 --port-file "$tmp/worker$i.port" \
      --worker-id "w$i" --num-kv-blocks "$KV_BLOCKS" --threads "$THREADS" --log-level warn \
      > "$tmp/worker$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < NUM_WORKERS; i++)); do
    wait_file "$tmp/worker$i.port" "${pids[$i]}" "tessera-worker $i"
    port=$(tr -dc '0-9' < "$tmp/worker$i.port")
    workers="${workers:+$workers,}127.0.0.1:$port"
  done
  "$ROUTER" --host 127.0.0.1 --port 0 --admin-port 0 --http-host 127.0.0.1 --http-port 0 --port-file "$tmp/router.port" \
    --workers "$workers" --policy "$policy" --log-level warn > "$tmp/router.log" 2>&1 &
  pids+=($!)
  wait_file "$tmp/router.port" "${pids[-1]}" tessera-router
  local client_port admin_port healthy=0
  read -r client_port admin_port http_port < "$tmp/router.port"
  for _ in $(seq 300); do
    healthy=$("$CLI" --router "127.0.0.1:$admin_port" --timeout 2 --json status 2>/dev/null |
              python3 -c 'import json,sys; print(json.load(sys.stdin)["healthy"])' 2>/dev/null ||
              echo 0)
    [[ $healthy -ge $NUM_WORKERS ]] && break
    sleep 0.1
  done
  [[ $healthy -ge $NUM_WORKERS ]] ||
    { echo "the router saw $healthy of $NUM_WORKERS workers healthy in 30 s" >&2; exit 1; }

  echo "== $policy: shared-prefix ($PREFIX_GROUPS groups x $PREFIX_LEN + $SUFFIX_LEN tokens), $RATE req/s, $DURATION s"
  # Same seed for every policy: the same prompts in the same order.
  "$BENCH" --target "127.0.0.1:$client_port" --service llm --admin "127.0.0.1:$admin_port" \
    --workload shared-prefix --groups "$PREFIX_GROUPS" --prefix-len "$PREFIX_LEN" \
    --suffix-len "$SUFFIX_LEN" --max-tokens "$OUT_TOKENS" --vocab-size 500 --rate "$RATE" \
    --duration "$DURATION" --seed 7 --timeout 120 --json "$tmp/$policy.json" ||
    echo "(some calls failed)"
  "$CLI" --router "127.0.0.1:$admin_port" --timeout 5 --json workers > "$tmp/$policy.workers.json"
  "$CLI" --router "127.0.0.1:$admin_port" --timeout 5 workers
  stop_all
}

for policy in $POLICIES; do run_policy "$policy"; done

echo "== summary"
python3 - "$tmp" $POLICIES <<'PY'
import json, sys
tmp, policies = sys.argv[1], sys.argv[2:]
print(f"{'policy':12}{'hit(router)':>12}{'hit(usage)':>11}{'req/s':>8}{'out tok/s':>10}"
      f"{'TTFT p50':>10}{'TTFT p99':>10}{'failed':>8}  requests per worker")
for p in policies:
    j = json.load(open(f"{tmp}/{p}.json"))
    w = json.load(open(f"{tmp}/{p}.workers.json"))["workers"]
    pc = j["prefix_cache"]
    hit = f"{100 * pc['hit_rate']:.1f}%" if pc else "-"
    usage = j["prefix_cache_hit_rate_usage"]
    usage = f"{100 * usage:.1f}%" if usage is not None else "-"
    spread = " ".join(f"{x['id']}:{x['requests_routed']}" for x in sorted(w, key=lambda x: x["id"]))
    print(f"{p:12}{hit:>12}{usage:>11}{j['requests_per_s']:8.1f}{j['output_tokens_per_s']:10.0f}"
          f"{j['ttft_ms']['p50']:10.1f}{j['ttft_ms']['p99']:10.1f}{j['failed']:8d}  {spread}")
PY
