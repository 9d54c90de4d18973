#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs a local Tessera
# cluster on this machine:
#   - replica A: tessera-worker tensor-parallel over two MPI ranks (mpirun -np 2)
#   - replica B: tessera-worker on one rank
#   - tessera-router in front of both (client port 50050, admin port 50055 on
#     127.0.0.1, the OpenAI-compatible HTTP API on port 8000), prefix-aware
#     placement
# It sends one streamed request through the router with the `tessera` CLI and
# one through the HTTP API with curl, prints them and the worker table, and
# keeps serving until Ctrl-C.
#
#   bash deploy/quickstart.sh [--model DIR] [more tessera-worker flags]
#
# Without --model the workers serve the embedded dummy model (--dummy tiny).
# Environment: BUILD_DIR (build), ROUTER_PORT (50050), ADMIN_PORT (50055), HTTP_PORT (8000),
# PROMPT ("Once upon a time"), MAX_TOKENS (32), CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
ROUTER_PORT=${ROUTER_PORT:-50050}
ADMIN_PORT=${ADMIN_PORT:-50055}
HTTP_PORT=${HTTP_PORT:-8000}
PROMPT=${PROMPT:-Once upon a time}
MAX_TOKENS=${MAX_TOKENS:-32}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)" --target tessera-worker tessera-router tessera

worker_args=(--dummy tiny)
for a in "$@"; do
  case "$a" in --model | --model=* | --dummy | --dummy=*) worker_args=() ;; esac
done
worker_args+=("$@")

run_dir=$(mktemp -d -t tessera-quickstart.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "quickstart: stopping the cluster"
  # Router first (stops new requests), then the replicas: SIGUSR1 to mpirun and
  # SIGTERM to a single worker drain them gracefully.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (bounded) until FILE exists and is non-empty.
wait_for_file() {
  local file=$1 what=$2
  for _ in $(seq 1 600); do
    [ -s "$file" ] && return 0
    sleep 0.2
  done
  echo "quickstart: $what did not start within 120 s; see $run_dir/*.log" >&2
  exit 1
}

bin=$BUILD_DIR
echo "quickstart: starting replica A (TP=2) and replica B (TP=1); logs in $run_dir"
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
  "$bin/worker/tessera-worker" "${worker_args[@]}" --host 127.0.0.1 --port 0 \
  --worker-id replica-a --port-file "$run_dir/a.port" >"$run_dir/a.log" 2>&1 &
pids+=($!)
"$bin/worker/tessera-worker" "${worker_args[@]}" --host 127.0.0.1 --port 0 \
  --worker-id replica-b --port-file "$run_dir/b.port" >"$run_dir/b.log" 2>&1 &
pids+=($!)
wait_for_file "$run_dir/a.port" "replica A"
wait_for_file "$run_dir/b.port" "replica B"
workers="127.0.0.1:$(cat "$run_dir/a.port"),127.0.0.1:$(cat "$run_dir/b.port")"

echo "quickstart: starting tessera-router on :$ROUTER_PORT (admin 127.0.0.1:$ADMIN_PORT) over $workers"
"$bin/router/tessera-router" --port "$ROUTER_PORT" --admin-port "$ADMIN_PORT" --http-port "$HTTP_PORT" \
  --workers "$workers" --port-file "$run_dir/router.port" >"$run_dir/router.log" 2>&1 &
pids=("$!" "${pids[@]}")
wait_for_file "$run_dir/router.port" "tessera-router"

cli=("$bin/router/cli/tessera" --router "127.0.0.1:$ADMIN_PORT" --endpoint "127.0.0.1:$ROUTER_PORT")
# Both replicas in rotation (bounded wait).
for _ in $(seq 1 300); do
  healthy=$("${cli[@]}" workers --json 2>/dev/null | grep -o '"healthy"' | wc -l || true)
  [ "$healthy" -ge 2 ] && break
  sleep 0.2
done
if [ "${healthy:-0}" -lt 2 ]; then
  echo "quickstart: the replicas did not become healthy within 60 s" >&2
  "${cli[@]}" workers >&2 || true
  exit 1
fi

echo "quickstart: tessera generate \"$PROMPT\" --max-tokens $MAX_TOKENS"
echo "----------------------------------------------------------------------"
# The text streams to stdout; the finish reason and usage follow on their own line.
"${cli[@]}" generate "$PROMPT" --max-tokens "$MAX_TOKENS" 2>"$run_dir/generate.err" ||
  { cat "$run_dir/generate.err" >&2; exit 1; }
echo
cat "$run_dir/generate.err"
echo "----------------------------------------------------------------------"
echo "quickstart: the same through the OpenAI-compatible HTTP API (curl)"
curl -sS --max-time 60 "http://127.0.0.1:$HTTP_PORT/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"prompt\": \"$PROMPT\", \"max_tokens\": $MAX_TOKENS, \"temperature\": 0}" ||
  { echo "quickstart: the HTTP API did not answer" >&2; exit 1; }
echo
echo "----------------------------------------------------------------------"
"${cli[@]}" workers
cat <<EOF

The cluster keeps serving until Ctrl-C. From another terminal:
  $bin/router/cli/tessera --endpoint 127.0.0.1:$ROUTER_PORT generate "Hello" --max-tokens 16
  $bin/router/cli/tessera --router 127.0.0.1:$ADMIN_PORT workers
  $bin/router/cli/tessera --router 127.0.0.1:$ADMIN_PORT drain replica-b --wait
  curl http://127.0.0.1:$HTTP_PORT/v1/models
  curl -N http://127.0.0.1:$HTTP_PORT/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Hello"}], "stream": true, "max_tokens": 16}'
(chat needs a model with a chat template: --model DIR, or --chat-template FILE)
Point an OpenAI-compatible client or front end at base URL http://127.0.0.1:$HTTP_PORT/v1
(any API key unless the router has --api-key).
EOF
# Serve until Ctrl-C, or until a process of the cluster exits.
wait -n "${pids[@]}" || true
echo "quickstart: a cluster process exited; see $run_dir/*.log" >&2
cat "$run_dir"/*.log >&2 || true
exit 1
