#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs Tessera on the
# embedded dummy model (or the model given with --model DIR), tensor-parallel
# over two MPI ranks on this machine.
#   bash deploy/quickstart.sh [--model DIR] [more tessera-generate flags]
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)" --target tessera-generate

model_args=(--dummy tiny)
for a in "$@"; do
  case "$a" in --model|--model=*) model_args=() ;; esac
done
set -x
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
  "$BUILD_DIR/worker/tessera-generate" "${model_args[@]}" \
  --prompt "Once upon a time" --max-tokens 32 --ignore-eos "$@"
