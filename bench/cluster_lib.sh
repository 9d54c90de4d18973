# Shared by the bench scripts that start a local cluster (router_overhead.sh,
# http_overhead.sh, disconnect_storm.sh, placement.sh); source it after setting
# BUILD_DIR.
# Defines the binaries (WORKER, ROUTER, BENCH, CLI; the environment may
# override each) and checks them and python3; a temp dir $tmp; pids=(), the
# processes to stop on exit (TERM, then KILL after 5 s), with $tmp removed;
# stop_all, which stops them earlier (and empties pids); and
# wait_file FILE PID WHAT.
WORKER=${WORKER:-$BUILD_DIR/worker/tessera-worker}
ROUTER=${ROUTER:-$BUILD_DIR/router/tessera-router}
BENCH=${BENCH:-$BUILD_DIR/bench/tessera-bench}
CLI=${CLI:-$BUILD_DIR/router/cli/tessera}
for b in "$WORKER" "$ROUTER" "$BENCH" "$CLI"; do
  [[ -x $b ]] || { echo "missing $b: build tessera-worker, tessera-router, tessera-bench and tessera" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "python3 is needed to read the tools' --json output" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_file FILE PID WHAT: until FILE is non-empty (at most 60 s), or PID died.
wait_file() {
  for _ in $(seq 600); do
    [[ -s $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited early:" >&2; tail -n 20 "$tmp"/*.log >&2; exit 1; }
    sleep 0.1
  done
  echo "$3 wrote no port file in 60 s" >&2; tail -n 20 "$tmp"/*.log >&2; exit 1
}
