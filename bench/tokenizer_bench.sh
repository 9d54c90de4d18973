#!/usr/bin/env bash
# Encode throughput, Tessera's tokenizer beside Hugging Face's Rust tokenizers
# (npm @anush008/tokenizers, installed as ../shared/clients/README.md shows),
# one thread and all threads, on the golden corpus and on a few MB of prose
# built here from Debian's text docs (/usr/share/common-licenses,
# /usr/share/doc/*/copyright). Both print a checksum of the ids: equal
# checksums mean both produced the same tokens.
#
#   bash bench/tokenizer_bench.sh [BUILD_DIR] [SHARED_DIR]
# Env: REFCLIENTS (default /tmp/refclients), MIN_SECONDS (default 2),
#      PROSE_MB (default 4), TOKENIZERS (default "qwen3 mistral").
set -euo pipefail
BUILD=${1:-build}
SHARED=${2:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
REFCLIENTS=${REFCLIENTS:-/tmp/refclients}
MIN_SECONDS=${MIN_SECONDS:-2}
PROSE_MB=${PROSE_MB:-4}
TOKENIZERS=${TOKENIZERS:-qwen3 mistral}
THREADS=$(nproc)
BIN="$BUILD/bench/tokenizer_bench"
[ -x "$BIN" ] || { echo "build $BIN first (cmake --build $BUILD --target tokenizer_bench)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The golden corpus: the 240 stress strings (same texts in every golden.jsonl).
python3 - "$SHARED/tokenizers/qwen3/golden.jsonl" "$WORK/golden.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], encoding='utf-8') as f, open(sys.argv[2], 'w', encoding='utf-8') as out:
    for line in f:
        if line.strip():
            out.write(json.dumps({"text": json.loads(line)["text"]}, ensure_ascii=False) + "\n")
PY
# Prose: Debian's licence texts and copyright files, deduplicated, cut into
# documents of about 8 KB at paragraph breaks, up to PROSE_MB megabytes.
python3 - "$WORK/prose.jsonl" "$PROSE_MB" <<'PY'
import glob, hashlib, json, sys
limit = int(float(sys.argv[2]) * 1e6)
files = sorted(glob.glob('/usr/share/common-licenses/*')) + sorted(glob.glob('/usr/share/doc/*/copyright'))
seen, total, docs, cur = set(), 0, [], ''
for path in files:
    try:
        text = open(path, 'rb').read().decode('utf-8')
    except (UnicodeDecodeError, IsADirectoryError, PermissionError):
        continue
    digest = hashlib.sha1(text.encode()).digest()
    if digest in seen:
        continue
    seen.add(digest)
    for para in text.split('\n\n'):
        cur += para + '\n\n'
        if len(cur) >= 8192:
            docs.append(cur); total += len(cur.encode()); cur = ''
        if total >= limit:
            break
    if total >= limit:
        break
with open(sys.argv[1], 'w', encoding='utf-8') as out:
    for d in docs:
        out.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
print(f"prose: {len(docs)} documents, {total / 1e6:.2f} MB from {len(seen)} files", file=sys.stderr)
PY

HAVE_HF=1
if [ ! -d "$REFCLIENTS/node_modules/@anush008/tokenizers" ]; then
  HAVE_HF=0
  echo "note: $REFCLIENTS/node_modules/@anush008/tokenizers missing; install it as" \
       "../shared/clients/README.md shows to run the reference side by side" >&2
fi

echo "machine: $(nproc) threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for tok in $TOKENIZERS; do
  dir="$SHARED/tokenizers/$tok"
  for corpus in golden prose; do
    "$BIN" --tokenizer "$dir" --corpus "$WORK/$corpus.jsonl" --label "$tok/$corpus" \
      --threads "$THREADS" --min_seconds "$MIN_SECONDS"
    if [ "$HAVE_HF" = 1 ]; then
      for n in 1 "$THREADS"; do
        RAYON_NUM_THREADS=$n NODE_PATH="$REFCLIENTS/node_modules" \
          node "$(dirname "$0")/tokenizer_bench_hf.cjs" "$dir/tokenizer.json" \
          "$WORK/$corpus.jsonl" "$tok/$corpus" "$MIN_SECONDS"
      done
    fi
  done
done
