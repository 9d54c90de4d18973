#!/usr/bin/env bash
# Chaos benchmark: steady load from two tenants through two routers side by
# side, while at random a worker is killed (-9), a rank of the TP=2 replica is
# SIGSTOPped, a replica is drained and undrained, or a router is sent SIGTERM;
# whatever died is restarted (as a supervisor such as Kubernetes would). At the
# end every request's outcome is reported, each failure with its error and the
# chaos event just before it, and every completed stream is sent again to the
# quiet cluster and compared token for token (tessera-bench --replay): a
# stream that failed over mid-way must equal an uninterrupted run, so any
# difference is a seam.
#   bash bench/chaos.sh [BUILD_DIR]
# The cluster: stories260K (the real llama2.c checkpoint, CPU, with
# --batch-invariant), replicas w1 and w2 (TP=1) and w3 (TP=2, mpirun), routers
# A and B, each with --workers w1,w2,w3 (their JSON request logs give the
# count of streams continued mid-stream and of requests retried). The tenants: "long" (Poisson LONG_RATE req/s, 48-96 tokens out,
# sampled at temperature 0.8 with a seed per request) and "short" (SHORT_RATE
# req/s, 8-16 tokens out, greedy); each client lists both routers
# (tessera-bench --target A,B: round robin, a call that finds its router gone
# is retried on the other). With TENANT_KEYS=1 (default when the router has
# --api-keys) each tenant has its own API key.
# Knobs (environment): DURATION (600 s of load), EVENT_MIN/EVENT_MAX (seconds
# between chaos events, 10/25), STOP_SECONDS (how long a rank stays stopped,
# 8), RESTART_DELAY (before a killed worker or stopped router comes back, 3),
# LONG_RATE (3), SHORT_RATE (3), SEED (1), MODEL (the stories260K directory),
# OUT_DIR (keep the logs, records and events there), and WORKER, ROUTER, BENCH,
# CLI for the binaries.
set -euo pipefail
BUILD_DIR=${1:-build}
DURATION=${DURATION:-600}
EVENT_MIN=${EVENT_MIN:-10}
EVENT_MAX=${EVENT_MAX:-25}
STOP_SECONDS=${STOP_SECONDS:-8}
RESTART_DELAY=${RESTART_DELAY:-3}
LONG_RATE=${LONG_RATE:-3}
SHORT_RATE=${SHORT_RATE:-3}
SEED=${SEED:-1}
here=$(cd "$(dirname "$0")" && pwd)
MODEL=${MODEL:-$here/../../shared/models/stories260K}
source "$here/cluster_lib.sh"
[[ -f $MODEL/model.safetensors ]] || { echo "no model at $MODEL (set MODEL)" >&2; exit 1; }
MPIRUN=${MPIRUN:-mpirun}
RANDOM=$SEED

now() { date +%s.%N; }
log_event() { printf '%s %s\n' "$(now)" "$*" | tee -a "$tmp/events.log"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Fixed ports, so a restarted process comes back where the others expect it.
declare -A port pid
for name in w1 w2 w3 routerA routerB adminA adminB; do port[$name]=$(free_port); done
# --batch-invariant: a token's logits do not depend on its batch, so a stream
# continued on another replica can equal the uninterrupted one bit for bit.
worker_args=(--model "$MODEL" --device cpu --threads 1 --host 127.0.0.1 --num-kv-blocks 256
             --batch-invariant --log-level warn)

start_worker() {  # NAME
  local name=$1
  if [[ $name == w3 ]]; then
    "$MPIRUN" --allow-run-as-root --oversubscribe --bind-to none -np 2 \
      "$WORKER" "${worker_args[@]}" --port "${port[$name]}" --worker-id "$name" \
      >> "$tmp/$name.log" 2>&1 &
  else
    "$WORKER" "${worker_args[@]}" --port "${port[$name]}" --worker-id "$name" \
      >> "$tmp/$name.log" 2>&1 &
  fi
  pid[$name]=$!
  pids+=("${pid[$name]}")
}

tenant_flags=()
if "$ROUTER" --help 2>&1 | grep -q -- 'api_keys\|api-keys'; then
  cat > "$tmp/keys.json" <<EOF
{"tenants": [{"name": "long", "key": "key-long", "weight": 1},
             {"name": "short", "key": "key-short", "weight": 1}]}
EOF
  tenant_flags=(--api-keys "$tmp/keys.json")
fi

start_router() {  # A|B
  local r=$1 workers="127.0.0.1:${port[w1]},127.0.0.1:${port[w2]},127.0.0.1:${port[w3]}"
  "$ROUTER" --host 127.0.0.1 --port "${port[router$r]}" --admin-port "${port[admin$r]}" \
    --http-port -1 --workers "$workers" --health-interval-ms 500 --log-level warn --log-format json \
    "${tenant_flags[@]}" >> "$tmp/router$r.log" 2>&1 &
  pid[router$r]=$!
  pids+=("${pid[router$r]}")
}

healthy_workers() {  # A|B: how many workers router A/B sees healthy
  "$CLI" --router "127.0.0.1:${port[admin$1]}" --timeout 2 --json status 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["healthy"])' 2>/dev/null || echo 0
}

wait_healthy() {  # until both routers see all three workers (at most 120 s)
  for _ in $(seq 240); do
    [[ $(healthy_workers A) -ge 3 && $(healthy_workers B) -ge 3 ]] && return 0
    sleep 0.5
  done
  echo "the routers did not see three healthy workers in 120 s" >&2
  tail -n 20 "$tmp"/*.log >&2
  exit 1
}

alive() { kill -0 "${pid[$1]}" 2>/dev/null; }

# The supervisor: whatever died comes back on its port.
restart_dead() {
  local name
  for name in w1 w2 w3; do
    if ! alive "$name"; then log_event "restart $name"; start_worker "$name"; fi
  done
  for name in A B; do
    if ! alive "router$name"; then log_event "restart router$name"; start_router "$name"; fi
  done
}

rank_pid() {  # the pid of rank 1 of the TP=2 replica (a child of its mpirun)
  local child
  for child in $(pgrep -P "${pid[w3]}" || true); do
    if tr '\0' '\n' < "/proc/$child/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
      echo "$child"; return 0
    fi
  done
  return 1
}

chaos_event() {
  local roll=$((RANDOM % 4)) victim r rank
  case $roll in
    0)  # kill -9 a worker
      victim=$( (( RANDOM % 3 == 2 )) && echo w3 || echo "w$((RANDOM % 2 + 1))")
      log_event "kill -9 $victim"
      if [[ $victim == w3 ]]; then pkill -KILL -P "${pid[w3]}" || true; fi
      kill -KILL "${pid[$victim]}" 2>/dev/null || true
      wait "${pid[$victim]}" 2>/dev/null || true
      sleep "$RESTART_DELAY"
      ;;
    1)  # SIGSTOP a follower rank for a while
      if rank=$(rank_pid); then
        log_event "SIGSTOP w3 rank 1 (pid $rank) for $STOP_SECONDS s"
        kill -STOP "$rank"
        sleep "$STOP_SECONDS"
        kill -CONT "$rank" 2>/dev/null || true
        log_event "SIGCONT w3 rank 1"
      else
        log_event "(no rank 1 of w3 to stop: it is restarting)"
      fi
      ;;
    2)  # drain a replica on both routers, then undrain it
      victim="w$((RANDOM % 3 + 1))"
      log_event "drain $victim"
      for r in A B; do
        "$CLI" --router "127.0.0.1:${port[admin$r]}" --timeout 5 drain "$victim" > /dev/null 2>&1 ||
          log_event "(drain $victim on router $r failed)"
      done
      sleep 10
      for r in A B; do
        "$CLI" --router "127.0.0.1:${port[admin$r]}" --timeout 5 undrain "$victim" > /dev/null 2>&1 ||
          log_event "(undrain $victim on router $r failed)"
      done
      log_event "undrain $victim"
      ;;
    3)  # SIGTERM a router (it finishes its streams), then it comes back
      r=$( (( RANDOM % 2 )) && echo A || echo B)
      log_event "SIGTERM router$r"
      kill -TERM "${pid[router$r]}" 2>/dev/null || true
      for _ in $(seq 300); do alive "router$r" || break; sleep 0.1; done
      sleep "$RESTART_DELAY"
      ;;
  esac
}

for name in w1 w2 w3; do start_worker "$name"; done
start_router A
start_router B
wait_healthy
log_event "cluster up: w1 w2 (TP=1) w3 (TP=2), routers A B"

targets="127.0.0.1:${port[routerA]},127.0.0.1:${port[routerB]}"
bench_common=(--target "$targets" --service llm --vocab-size 512 --timeout 300 --duration "$DURATION")
key_of() { [[ ${#tenant_flags[@]} -gt 0 ]] && echo "--api-key=key-$1" || echo "--api-key="; }
"$BENCH" "${bench_common[@]}" "$(key_of long)" --rate "$LONG_RATE" --prompt-len 32 --prompt-len-max 64 \
  --max-tokens 48 --max-tokens-max 96 --temperature 0.8 --seed "$SEED" \
  --record "$tmp/long.jsonl" --json "$tmp/long.json" > "$tmp/long.out" 2>&1 &
bench_long=$!
"$BENCH" "${bench_common[@]}" "$(key_of short)" --rate "$SHORT_RATE" --prompt-len 8 --prompt-len-max 16 \
  --max-tokens 8 --max-tokens-max 16 --seed "$((SEED + 1000))" \
  --record "$tmp/short.jsonl" --json "$tmp/short.json" > "$tmp/short.out" 2>&1 &
bench_short=$!

end=$(( $(date +%s) + DURATION ))
while (( $(date +%s) < end )); do
  sleep $((EVENT_MIN + RANDOM % (EVENT_MAX - EVENT_MIN + 1)))
  (( $(date +%s) < end )) || break
  chaos_event
  restart_dead
done
log_event "chaos over; waiting for the load to finish"
wait "$bench_long" || true
wait "$bench_short" || true
restart_dead
wait_healthy
log_event "replaying every completed stream on the quiet cluster"
for tenant in long short; do
  "$BENCH" --target "127.0.0.1:${port[routerA]}" --service llm --timeout 300 "$(key_of $tenant)" \
    --concurrency 4 --replay "$tmp/$tenant.jsonl" > "$tmp/$tenant.replay" 2>&1 || true
done

if [[ -n ${OUT_DIR:-} ]]; then mkdir -p "$OUT_DIR" && cp -r "$tmp"/. "$OUT_DIR"/; fi
echo "== chaos events"
cat "$tmp/events.log"
echo "== outcome"
python3 - "$tmp" <<'PY'
import bisect, json, re, sys
tmp = sys.argv[1]
events = []
for line in open(f"{tmp}/events.log"):
    t, what = line.split(" ", 1)
    events.append((float(t), what.strip()))
times = [t for t, _ in events]
total_failed = 0
total_seams = 0
for tenant in ("long", "short"):
    calls = [json.loads(l) for l in open(f"{tmp}/{tenant}.jsonl") if l.strip()]
    failed = [c for c in calls if c["failure"]]
    total_failed += len(failed)
    replay = open(f"{tmp}/{tenant}.replay").read()
    m = re.search(r"replay: (\d+) calls compared: (\d+) identical, (\d+) differ, (\d+) failed", replay)
    compared, same, differ, rfailed = map(int, m.groups()) if m else (0, 0, -1, 0)
    total_seams += max(differ, 0) if m else 1
    print(f"{tenant}: {len(calls)} requests, {len(calls) - len(failed)} completed, {len(failed)} failed; "
          f"replayed {compared}: {same} identical, {differ} with a seam, {rfailed} failed on replay")
    for c in failed:
        i = bisect.bisect_right(times, c["done_unix_s"]) - 1
        before = (f"{c['done_unix_s'] - times[i]:.1f} s after '{events[i][1]}'" if i >= 0
                  else "before any event")
        print(f"  failed {c['request_id']}: {c['failure']}: {c['error']} ({before})")
    if differ > 0 or not m:
        print("  " + "\n  ".join(l for l in replay.splitlines() if l.startswith(("replay", "  call"))))
# The routers' request logs (JSON lines, both routers, across restarts): how
# the requests that completed got there.
records = []
for r in ("A", "B"):
    for line in open(f"{tmp}/router{r}.log", errors="replace"):
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
continued = [x for x in records if x.get("continuations", 0) > 0]
retried = [x for x in records if x.get("attempts", 0) > 1 and x.get("continuations", 0) == 0]
print(f"routers: {len(records)} requests logged; {len(continued)} streams continued mid-stream on "
      f"another worker ({sum(x['continuations'] for x in continued)} continuations, "
      f"{sum(x['status'] == 'OK' for x in continued)} of them completed OK); "
      f"{len(retried)} retried before their first token "
      f"({sum(x['status'] == 'OK' for x in retried)} completed OK)")
print(f"total: {total_failed} failed requests, {total_seams} streams with a seam")
PY
