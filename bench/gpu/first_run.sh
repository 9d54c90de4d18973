#!/usr/bin/env bash
# The first run of Tessera's GPU path, in one command (bench/gpu/README.md):
#   bench/gpu/first_run.sh [BUNDLE_OR_BUILD_DIR] [--dry-run]
# BUNDLE_OR_BUILD_DIR: a bundle of deploy/gpu-bundle.sh (bin/, env.sh;
# default: the directory above this script when it sits in a bundle's bench/)
# or a CUDA build tree. --dry-run lists every step with its timeout and runs
# nothing.
#
# Steps, each under its own `timeout`, its output written to $OUT/NN-name.log
# as it goes (OUT defaults to ./first-run-out):
#   1. preflight: nvidia-smi; torch and its CUDA version; the bundle's library
#      check; one CUDA test that must not skip (TESSERA_REQUIRE_GPU=1);
#   2. the kernel tests against the CPU references (Llama-3-8B and Qwen3-8B
#      shapes in cuda_model_shapes_test);
#   3. the model tests: CUDA-graph vs eager logits (and decode graphs per
#      context bucket), stories260K float32 against llama2.c's reference, a bf16 Qwen3-shaped dummy against CPU
#      float32 up to near-ties;
#   4. a trimmed benchmark: batch-1 decode ms/token of a dummy Llama-3-8B in
#      bf16 against the HBM roofline, offline throughput at 128 in / 128 out,
#      and the same workload through Hugging Face transformers;
#   5. if time remains: TP=2 over the host-staged communicator (two ranks on
#      the one GPU).
# Every GPU test runs with TESSERA_REQUIRE_GPU=1: a skip is a failure. The
# whole run stays within BUDGET_S (default 480 s = 8 minutes): a step's
# timeout is cut to what is left, and a step that would get under its
# minimum is skipped; steps 1-3 must end by BUDGET_S - RESERVE_S (default
# 240 s kept for the benchmark). A summary table ends the output ($OUT/summary.txt).
# Exit status: 0 when every step that ran passed, 1 otherwise.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dry_run=0
dir=""
for a in "$@"; do
  case "$a" in
    --dry-run) dry_run=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) dir=$a ;;
  esac
done
[[ -z "$dir" ]] && dir="$here/.."
dir=$(cd "$dir" 2> /dev/null && pwd) || { echo "first_run: no directory $dir" >&2; exit 2; }
OUT=${OUT:-$PWD/first-run-out}
BUDGET_S=${BUDGET_S:-480}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1  # logs as they come, also through tee

# Where the binaries are: a bundle (flat bin/) or a build tree.
if [[ -x "$dir/bin/gpu_bench" || -f "$dir/env.sh" ]]; then
  layout=bundle
  bin() { echo "$dir/bin/$1"; }
  hf_script="$dir/bench/hf_baseline.py"
else
  layout=build
  bin() {
    local p
    for p in tests/kernels tests/worker bench/gpu worker; do
      [[ -e "$dir/$p/$1" ]] && { echo "$dir/$p/$1"; return; }
    done
    echo "$dir/MISSING/$1"
  }
  hf_script="$here/hf_baseline.py"
fi

# The caller's library path, for Python (torch brings its own CUDA libraries;
# the bundle's gRPC/protobuf/libstdc++ must not come first for it).
# (Started from run-gpu.sh, env.sh has already saved it.)
if [[ -n "${TESSERA_ORIG_LD_LIBRARY_PATH+set}" ]]; then
  orig_ld_set="set"
  orig_ld=$TESSERA_ORIG_LD_LIBRARY_PATH
else
  orig_ld_set=${LD_LIBRARY_PATH+set}
  orig_ld=${LD_LIBRARY_PATH:-}
fi
if [[ $layout == bundle && $dry_run == 0 ]]; then
  # shellcheck disable=SC1091
  source "$dir/env.sh"
fi
python_env() {
  if [[ -n "$orig_ld_set" && -n "$orig_ld" ]]; then
    env LD_LIBRARY_PATH="$orig_ld" "$@"
  else
    env -u LD_LIBRARY_PATH "$@"
  fi
}
mpirun_cmd=${TESSERA_MPIRUN:-mpirun --oversubscribe --bind-to none}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # GPU machines run as root

# ---- the steps: name, timeout (s), minimum (s), command ----------------------
# Steps 1-3 must end RESERVE_S before the budget does, so that a hanging
# test cannot starve the benchmark.
RESERVE_S=${RESERVE_S:-240}
names=() timeouts=() minimums=() commands=() deadlines=()
deadline=$((BUDGET_S - RESERVE_S))
step() {
  names+=("$1")
  timeouts+=("$2")
  minimums+=("$3")
  commands+=("$4")
  deadlines+=("$deadline")
}
gt() {  # a gtest binary with TESSERA_REQUIRE_GPU=1 and optional filter
  local b f=${2:-}
  b=$(bin "$1")
  echo "env TESSERA_REQUIRE_GPU=1 $b --gtest_color=no${f:+ --gtest_filter=$f}"
}

step preflight-nvidia-smi 15 5 "nvidia-smi"
step preflight-torch 45 20 "python_env $PYTHON -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"device\", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None); assert torch.cuda.is_available()'"
if [[ $layout == bundle ]]; then
  step preflight-libs 20 5 "$dir/run-gpu.sh --check-libs"
fi
step preflight-cuda-must-not-skip 45 15 "$(gt cuda_tensor_test)"
step kernels-errors 20 5 "$(gt cuda_error_test)"
step kernels-ops 60 20 "$(gt cuda_ops_test)"
step kernels-attention 60 20 "$(gt cuda_attention_test)"
step kernels-sampling 60 20 "$(gt cuda_sampling_test)"
step kernels-graphs 20 5 "$(gt cuda_graph_test)"
step kernels-model-shapes 60 20 "$(gt cuda_model_shapes_test)"
step model-graph-vs-eager 60 20 "$(gt gpu_model_test 'GpuStoriesTest.Graph*')"
step model-decode-graph-buckets 45 15 "$(gt gpu_decode_graphs_test)"
step model-stories-f32-reference 45 15 "$(gt gpu_model_test GpuStoriesTest.Float32ReproducesGreedyReference)"
step model-qwen3-bf16-vs-cpu 90 30 "$(gt gpu_model_test 'GpuBf16Test.*')"
deadline=$BUDGET_S
step bench-tessera-8b 150 90 "$(bin gpu_bench) --dummy llama3-8b --dtype bfloat16 --batches 1 --context 512 --decode-steps 30 --offline-requests 256 --input-len 128 --output-len 128 --max-num-seqs 256 --max-num-batched-tokens 8192 --max-model-len 1024 --gpu-memory-utilization 0.85 --log-level warn --json $OUT/tessera.json"
step bench-transformers-8b 120 60 "python_env $PYTHON $hf_script --batches 1 --context 512 --decode-steps 16 --offline-requests 256 --input-len 128 --output-len 128 --offline-batch 256 --json $OUT/hf.json"
step tp2-host-staged 90 45 "env TESSERA_REQUIRE_GPU=1 $mpirun_cmd -np 2 $(bin gpu_tp_mpi_test) --gtest_color=no"

if [[ $dry_run == 1 ]]; then
  echo "first_run: $layout at $dir; OUT=$OUT; budget ${BUDGET_S}s, steps 1-$((${#names[@]} - 3))" \
    "by $((BUDGET_S - RESERVE_S))s (a timeout is cut to what is left; under its minimum the step is skipped)"
  printf '%-3s %-30s %8s %8s %9s  %s\n' "#" step timeout minimum "ends by" command
  total=0
  for i in "${!names[@]}"; do
    printf '%-3s %-30s %7ss %7ss %8ss  %s\n' "$((i + 1))" "${names[$i]}" "${timeouts[$i]}" \
      "${minimums[$i]}" "${deadlines[$i]}" "${commands[$i]}"
    total=$((total + timeouts[i]))
  done
  echo "sum of step timeouts: ${total}s; the run itself is capped at ${BUDGET_S}s"
  exit 0
fi

mkdir -p "$OUT"
start=$(date +%s)
results=() seconds=()
{
  echo "first_run: $(date -u +%FT%TZ) $layout at $dir; budget ${BUDGET_S}s"
  uname -a
} | tee "$OUT/00-run.log"
for i in "${!names[@]}"; do
  name=${names[$i]}
  log="$OUT/$(printf '%02d' $((i + 1)))-$name.log"
  left=$((deadlines[i] - ($(date +%s) - start)))
  limit=${timeouts[$i]}
  ((limit > left)) && limit=$left
  if ((limit < minimums[i])); then
    results+=("SKIP (${left}s left)")
    seconds+=(0)
    echo "== $name: skipped, ${left}s left of the budget" | tee "$log"
    continue
  fi
  echo "== $name (timeout ${limit}s): ${commands[$i]}" | tee "$log"
  t0=$(date +%s)
  # bash -c inherits the functions through export -f.
  export -f python_env
  export orig_ld orig_ld_set
  timeout --kill-after=10 "$limit" bash -c "${commands[$i]}" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  dt=$(($(date +%s) - t0))
  seconds+=("$dt")
  case $rc in
    0) results+=(PASS) ;;
    124 | 137) results+=("TIMEOUT (${limit}s)") ;;
    *) results+=("FAIL (exit $rc)") ;;
  esac
  echo "== $name: ${results[-1]} in ${dt}s (${left}s were left)" | tee -a "$log"
done

# ---- summary ------------------------------------------------------------------
failed=0
for r in "${results[@]}"; do
  [[ "$r" == PASS || "$r" == SKIP* ]] || failed=1
done
{
  echo
  echo "first_run summary ($(($(date +%s) - start))s of ${BUDGET_S}s; logs in $OUT)"
  printf '%-3s %-30s %-22s %6s\n' "#" step result seconds
  for i in "${!names[@]}"; do
    printf '%-3s %-30s %-22s %6s\n' "$((i + 1))" "${names[$i]}" "${results[$i]}" "${seconds[$i]}"
  done
  python_env "$PYTHON" - "$OUT" << 'EOF' || echo "(no benchmark figures: $OUT/tessera.json missing or unreadable)"
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
t, h = load("tessera.json"), load("hf.json")
if t is None:
    sys.exit(1)
print()
print(f"device: {t.get('device')}; copy {t.get('copy_bandwidth_GBps', 0):.0f} GB/s, "
      f"bf16 GEMM {t.get('gemm_bf16_TFLOPS', 0):.0f} TFLOP/s; model {t.get('model')} "
      f"{t.get('dtype')}, {t.get('weight_bytes', 0) / 1e9:.2f} GB of weights")
for d in t.get("decode", []):
    if d["batch"] == 1:
        print(f"batch-1 decode: {d['step_ms']:.2f} ms/token; roofline {d['roofline_ms']:.2f} ms "
              f"-> {d['ratio_to_roofline']:.2f}x the roofline (target <= 1.25x)")
        hd = {x["batch"]: x for x in (h or {}).get("decode", [])}.get(1)
        if hd:
            print(f"  transformers: {hd['step_ms']:.2f} ms/token")
o = t.get("offline")
if o:
    line = (f"offline {o['requests']} x ({o['input_len']}+{o['output_len']}): "
            f"{o['output_tokens_per_s']:.0f} output tokens/s")
    if h and "offline" in h:
        r = o["output_tokens_per_s"] / h["offline"]["output_tokens_per_s"]
        line += (f"; transformers {h['offline']['output_tokens_per_s']:.0f} -> {r:.1f}x "
                 f"(target >= 5x)")
    print(line)
for section, msg in t.get("errors", {}).items():
    print(f"gpu_bench section {section} failed: {msg}")
EOF
} | tee "$OUT/summary.txt"
exit $failed
