#!/usr/bin/env bash
# Disconnect storm: CLIENTS streaming POST /v1/completions calls that hang up
# after their first K chunks must not leave work behind. Starts NUM_WORKERS
# tessera-workers (--dummy tiny) and a tessera-router (--http-port 0), reads
# each worker's load through the router (`tessera workers --json`), then runs
# tessera-bench --api openai --concurrency CLIENTS --requests CLIENTS
# --disconnect-after-tokens K with long outputs (OUT_TOKENS, so that finishing
# them instead of aborting them would take far longer than WAIT s), sampling
# the workers' load meanwhile. Afterwards it polls, for at most WAIT s, until
# every worker reports running == 0, waiting == 0, in_flight == 0 and
# kv_blocks_used back to its value before the storm, and the router reports
# requests_in_flight == 0; prints PASS with the time that took, or FAIL with
# the last figures.
#
# kv_blocks_used is the worker's GetLoad LoadReport.kv_blocks_used =
# Scheduler stats used_blocks = BlockManager::num_used_blocks(): blocks held
# by at least one sequence (total - free - evictable). Blocks left in the
# prefix cache with no reference (the storm's prompts, "cached" in
# worker/engine/block_manager.h) do not count, so an idle worker reports 0
# whatever it has cached.
#   bash bench/disconnect_storm.sh [BUILD_DIR]
# Knobs (environment): CLIENTS (500), K (2), OUT_TOKENS (256), PROMPT_LEN
# (32), NUM_WORKERS (2), WAIT (30), THREADS (worker CPU threads, 1),
# KV_BLOCKS (4096 per worker); WORKER, ROUTER, BENCH, CLI override the
# binaries' paths.
set -euo pipefail
BUILD_DIR=${1:-build}
CLIENTS=${CLIENTS:-500}
K=${K:-2}
OUT_TOKENS=${OUT_TOKENS:-256}
PROMPT_LEN=${PROMPT_LEN:-32}
NUM_WORKERS=${NUM_WORKERS:-2}
WAIT=${WAIT:-30}
THREADS=${THREADS:-1}
KV_BLOCKS=${KV_BLOCKS:-4096}
source "$(dirname "$0")/cluster_lib.sh"

workers=""
for ((i = 0; i < NUM_WORKERS; i++)); do
  "$WORKER" --dummy tiny --host 127.0.0.1 --port 0 --port-file "$tmp/worker$i.port" \
    --worker-id "w$i" --num-kv-blocks "$KV_BLOCKS" --threads "$THREADS" --log-level warn \
    > "$tmp/worker$i.log" 2>&1 &
  pids+=($!)
  wait_file "$tmp/worker$i.port" "${pids[-1]}" "tessera-worker $i"
  workers+="${workers:+,}127.0.0.1:$(tr -dc '0-9' < "$tmp/worker$i.port")"
done

"$ROUTER" --host 127.0.0.1 --port 0 --admin-port 0 --http-host 127.0.0.1 --http-port 0 \
  --port-file "$tmp/router.port" --workers "$workers" --max-concurrent-requests 2048 \
  --log-level warn > "$tmp/router.log" 2>&1 &
router_pid=$!
pids+=("$router_pid")
wait_file "$tmp/router.port" "$router_pid" tessera-router
read -r client_port admin_port http_port < "$tmp/router.port"
[[ -n ${http_port:-} && $http_port != 0 ]] || { echo "the router's port file has no HTTP port" >&2; exit 1; }

# snapshot: one line of the router's view of the cluster (python dict repr
# of per-worker load and the router's requests in flight), or "" on error.
snapshot() {
  { "$CLI" --router "127.0.0.1:$admin_port" --timeout 2 --json workers 2>/dev/null &&
    "$CLI" --router "127.0.0.1:$admin_port" --timeout 2 --json status 2>/dev/null; } |
    python3 -c '
import json, sys
text = sys.stdin.read()
dec = json.JSONDecoder(); i = 0; docs = []
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    d, i = dec.raw_decode(text, i); docs.append(d)
ws, st = docs[0]["workers"], docs[1]
out = {"router_in_flight": st["requests_in_flight"], "healthy": st["healthy"], "workers": {}}
for w in ws:
    l = w["load"] or {}
    out["workers"][w["id"]] = {k: l.get(k) for k in ("running", "waiting", "in_flight", "kv_blocks_used")}
print(json.dumps(out, sort_keys=True))' 2>/dev/null || true
}

before=""
for _ in $(seq 300); do
  before=$(snapshot)
  [[ -n $before ]] && python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if j["healthy"] >= int(sys.argv[2]) and all(w["running"] is not None for w in j["workers"].values()) else 1)' "$before" "$NUM_WORKERS" && break
  before=""
  sleep 0.1
done
[[ -n $before ]] || { echo "the router did not see $NUM_WORKERS healthy workers in 30 s" >&2; tail -n 20 "$tmp"/*.log >&2; exit 1; }
echo "before: $before"

echo "== storm: $CLIENTS clients, each closes its stream after $K chunks of $OUT_TOKENS"
start=$(date +%s.%N)
"$BENCH" --target "127.0.0.1:$http_port" --api openai --concurrency "$CLIENTS" --requests "$CLIENTS" \
  --prompt-len "$PROMPT_LEN" --max-tokens "$OUT_TOKENS" --disconnect-after-tokens "$K" \
  --vocab-size 500 --timeout 120 --seed 400 > "$tmp/storm.txt" 2>&1 &
bench_pid=$!
pids+=("$bench_pid")
: > "$tmp/during"
for _ in $(seq 1200); do  # bounded by the calls' 120 s deadline
  kill -0 "$bench_pid" 2>/dev/null || break
  snapshot >> "$tmp/during"
  sleep 0.2
done
storm_rc=0
wait "$bench_pid" || storm_rc=$?
storm_end=$(date +%s.%N)
grep -E "^(requests|disconnected|failed|wall)" "$tmp/storm.txt" || true
grep "a call failed" "$tmp/storm.txt" | head -5 || true
python3 - "$tmp/during" <<'PY'
import json, sys
peak = {}
for line in open(sys.argv[1]):
    if not line.strip(): continue
    j = json.loads(line)
    for wid, l in j["workers"].items():
        p = peak.setdefault(wid, {})
        for k, v in l.items():
            if v is not None: p[k] = max(p.get(k, 0), v)
    peak["router_in_flight"] = max(peak.get("router_in_flight", 0), j["router_in_flight"])
print("peak during the storm:", json.dumps(peak, sort_keys=True))
PY

echo "== settling: at most $WAIT s"
settled=""
last=""
deadline=$(( $(date +%s) + WAIT ))
while (( $(date +%s) < deadline )); do
  last=$(snapshot)
  if [[ -n $last ]] && python3 -c '
import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ok = a["router_in_flight"] == 0 and all(
    l["running"] == 0 and l["waiting"] == 0 and l["in_flight"] == 0 and
    l["kv_blocks_used"] == b["workers"][w]["kv_blocks_used"] for w, l in a["workers"].items())
sys.exit(0 if ok else 1)' "$before" "$last"; then
    settled=$(python3 -c "print(f'{$(date +%s.%N) - $storm_end:.1f}')")
    break
  fi
  sleep 0.2
done
echo "after:  $last"
kill -0 "$router_pid" 2>/dev/null || { echo "FAIL: the router died" >&2; tail -n 30 "$tmp/router.log" >&2; exit 1; }
if [[ $storm_rc -ne 0 ]]; then
  echo "FAIL: tessera-bench reported failed calls (exit $storm_rc)"
  tail -n 20 "$tmp/router.log" >&2
  exit 1
fi
if [[ -z $settled ]]; then
  echo "FAIL: not back to idle within $WAIT s of the storm's end (storm took $(python3 -c "print(f'{$storm_end - $start:.1f}')") s)"
  tail -n 20 "$tmp/router.log" >&2
  exit 1
fi
echo "PASS: every worker idle (running 0, in_flight 0, kv_blocks_used as before) and the router's in-flight 0, ${settled} s after the storm ended (storm took $(python3 -c "print(f'{$storm_end - $start:.1f}')") s)"
