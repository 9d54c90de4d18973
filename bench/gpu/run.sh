#!/usr/bin/env bash
# Tessera's GPU benchmark in one command, on the GPU machine:
#   bench/gpu/run.sh BUILD_OR_BUNDLE_DIR [OUT_DIR]
# BUILD_OR_BUNDLE_DIR is a CUDA build tree (gpu_bench at bench/gpu/gpu_bench)
# or a bundle made by deploy/gpu-bundle.sh (bin/gpu_bench, env.sh).
# Measures, on dummy llama3-8b in bfloat16 (see bench/gpu/README.md):
#   (a) decode step time at batch 1, 8, 32, 128, 256 (context 512) against
#       the HBM roofline (weight + KV bytes / measured copy bandwidth);
#   (b) prefill tokens/s against the measured cuBLASLt bf16 GEMM rate;
#   (c) offline throughput, 1,000 requests of 128 in + 128 out, through the
#       engine;
#   (d) the same shapes through Hugging Face transformers (hf_baseline.py).
# Prints a table and writes OUT_DIR/tessera.json, hf.json and summary.json
# (OUT_DIR defaults to ./gpu-bench-results). Knobs (environment): PRESET
# (llama3-8b), BATCHES, CONTEXT, REQUESTS, INPUT_LEN, OUTPUT_LEN,
# HF_COMPILE=1 (torch.compile the baseline), SKIP_HF=1, PYTHON.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: bench/gpu/run.sh BUILD_OR_BUNDLE_DIR [OUT_DIR]}
dir=$(cd "$dir" && pwd)
out=${2:-gpu-bench-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PRESET=${PRESET:-llama3-8b}
BATCHES=${BATCHES:-1,8,32,128,256}
CONTEXT=${CONTEXT:-512}
REQUESTS=${REQUESTS:-1000}
INPUT_LEN=${INPUT_LEN:-128}
OUTPUT_LEN=${OUTPUT_LEN:-128}
PYTHON=${PYTHON:-python3}

if [[ -x "$dir/bin/gpu_bench" ]]; then  # a bundle
  # shellcheck disable=SC1091
  source "$dir/env.sh"
  bench="$dir/bin/gpu_bench"
  hf="$dir/bench/hf_baseline.py"
elif [[ -x "$dir/bench/gpu/gpu_bench" ]]; then  # a build tree
  bench="$dir/bench/gpu/gpu_bench"
  hf="$here/hf_baseline.py"
else
  echo "run.sh: no gpu_bench under $dir (bin/ of a bundle or bench/gpu/ of a CUDA build)" >&2
  exit 2
fi

echo "== Tessera: $bench"
"$bench" --dummy "$PRESET" --batches "$BATCHES" --context "$CONTEXT" \
  --offline-requests "$REQUESTS" --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" \
  --max-num-seqs 256 --max-num-batched-tokens 8192 --max-model-len $((CONTEXT + 512)) \
  --gpu-memory-utilization 0.9 --log-level warn --json "$out/tessera.json" ||
  echo "run.sh: gpu_bench failed in some section (its errors are in tessera.json); going on" >&2

if [[ "${SKIP_HF:-0}" != 1 ]]; then
  echo
  echo "== Hugging Face transformers: $hf"
  hf_args=(--batches "$BATCHES" --context "$CONTEXT" --offline-requests "$REQUESTS"
           --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" --json "$out/hf.json")
  [[ "${HF_COMPILE:-0}" == 1 ]] && hf_args+=(--compile)
  # The bundle's env.sh puts the bundle's libraries (protobuf, libstdc++, ...)
  # first on LD_LIBRARY_PATH; torch must not load those, so the baseline runs
  # with the caller's own LD_LIBRARY_PATH (unset if it had none).
  hf_env=(env)
  if [[ -n "${TESSERA_ORIG_LD_LIBRARY_PATH+set}" ]]; then
    if [[ -n "$TESSERA_ORIG_LD_LIBRARY_PATH" ]]; then
      hf_env+=(LD_LIBRARY_PATH="$TESSERA_ORIG_LD_LIBRARY_PATH")
    else
      hf_env+=(-u LD_LIBRARY_PATH)
    fi
  fi
  if ! "${hf_env[@]}" "$PYTHON" "$hf" "${hf_args[@]}"; then
    echo "run.sh: the transformers baseline failed; the summary has Tessera only" >&2
    rm -f "$out/hf.json"
  fi
fi

echo
"$PYTHON" - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
t = json.load(open(os.path.join(out, "tessera.json")))
hf_path = os.path.join(out, "hf.json")
h = json.load(open(hf_path)) if os.path.exists(hf_path) else None
hf_decode = {d["batch"]: d for d in (h or {}).get("decode", [])}
print(f"{t.get('device')}: copy {t.get('copy_bandwidth_GBps', 0):.0f} GB/s, bf16 GEMM "
      f"{t.get('gemm_bf16_TFLOPS', 0):.0f} TFLOP/s; {t.get('model')} {t.get('dtype')}, "
      f"{t.get('weight_bytes', 0) / 1e9:.2f} GB of weights")
for section, msg in t.get("errors", {}).items():
    print(f"gpu_bench section {section} FAILED: {msg}")
print()
print(f"{'batch':>6} {'ctx':>5} {'tessera ms':>11} {'roofline ms':>12} {'x roof':>7} "
      f"{'HF ms':>9} {'HF/tessera':>11}")
for d in t.get("decode", []):
    hms = hf_decode.get(d["batch"], {}).get("step_ms")
    hf_ms = "%.2f" % hms if hms else "-"
    hf_ratio = "%.1fx" % (hms / d["step_ms"]) if hms else "-"
    print(f"{d['batch']:>6} {d['context']:>5} {d['step_ms']:>11.2f} {d['roofline_ms']:>12.2f} "
          f"{d['ratio_to_roofline']:>7.2f} {hf_ms:>9} {hf_ratio:>11}")
p = t.get("prefill")
if p: print(f"\nprefill: {p['tokens_per_s']:.0f} tokens/s = {100 * p.get('fraction_of_gemm', 0):.0f}% of the "
      f"GEMM rate (2 x params FLOPs/token)"
      + (f"; HF {h['prefill']['tokens_per_s']:.0f} tokens/s" if h and "prefill" in h else ""))
summary = {"tessera": t, "hf": h, "targets": {}}
b1 = next((d for d in t.get("decode", []) if d["batch"] == 1), None)
if b1:
    ok = b1["ratio_to_roofline"] <= 1.25
    summary["targets"]["batch1_decode_within_1.25x_roofline"] = ok
    print(f"target: batch-1 decode within 1.25x of the roofline: "
          f"{b1['ratio_to_roofline']:.2f}x -> {'MET' if ok else 'MISSED'}")
if "offline" in t:
    o = t["offline"]
    line = (f"offline: {o['requests']} x ({o['input_len']}+{o['output_len']}): tessera "
            f"{o['output_tokens_per_s']:.0f} output tokens/s")
    if h and "offline" in h:
        ratio = o["output_tokens_per_s"] / h["offline"]["output_tokens_per_s"]
        ok = ratio >= 5
        summary["targets"]["offline_at_least_5x_transformers"] = ok
        summary["offline_ratio_to_transformers"] = ratio
        line += (f", transformers {h['offline']['output_tokens_per_s']:.0f} -> {ratio:.1f}x "
                 f"(target >= 5x: {'MET' if ok else 'MISSED'})")
    print(line)
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(f"\nJSON: {out}/tessera.json, {out}/hf.json, {out}/summary.json")
EOF
