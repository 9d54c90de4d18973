#!/usr/bin/env bash
# Installs the third-party clients the tests drive Tessera with (the official
# `openai` SDK for the OpenAI-compatible HTTP API) from the npm registry into
# DIR (default: build/test-clients), and prints DIR. Idempotent: an install
# of the same version is kept. Needs node and npm (deploy/install-deps.sh).
#   bash deploy/install-test-clients.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/test-clients}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

node_major=$(node -p 'process.versions.node.split(".")[0]')
# openai 7.x declares node >= 22 but runs on node 20 (tested); older nodes get
# the 6.x line, which declares no engine limit.
if [ "$node_major" -ge 20 ]; then sdk=openai@7.59.0; else sdk=openai@6; fi

have=$(cd "$dir" && node -p 'try { require("openai/package.json").version } catch (e) { "" }' 2>/dev/null || true)
want=${sdk#openai@}
if [ -n "$have" ] && [[ "$have" == "$want"* ]]; then
  echo "install-test-clients: openai $have present in $dir" >&2
else
  echo "install-test-clients: installing $sdk into $dir (node $(node --version))" >&2
  (cd "$dir" && { [ -f package.json ] || npm init -y > /dev/null; } &&
    npm install --no-audit --no-fund --loglevel=error "$sdk" >&2)
fi
echo "$dir"
