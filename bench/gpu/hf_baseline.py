#!/usr/bin/env python3
"""The peer baseline for bench/gpu/run.sh: Hugging Face transformers on the
same GPU and the same shapes as gpu_bench.

The model is built from a LlamaConfig with random weights (no download: the
GPU machine has no network), in bfloat16, Llama-3-8B's shape by default.
Generation is batched `model.generate` with a static KV cache
(cache_implementation="static"), greedy, never stopping early. Measures:
  decode: per-step time at each batch size after `--context` prompt tokens,
          as (time of generate with 1 + N new tokens - time with 1) / N;
  prefill: tokens/s of one forward over a batch of `--context`-token prompts;
  offline: `--offline-requests` requests of `--input-len` + `--output-len`
          tokens, in batches of `--offline-batch` (all prompts have the same
          length, so no padding).
Writes --json and prints a summary. --compile adds torch.compile of the
forward (mode reduce-overhead), which HF recommends with a static cache; off
by default (it compiles for minutes per shape).
"""
import argparse
import json
import statistics
import sys
import time


def clean_library_path():
    """Re-executes this script without a Tessera bundle's lib/ on
    LD_LIBRARY_PATH (env.sh puts it first): its protobuf, libstdc++ and
    OpenBLAS must not be what torch loads. The loader reads LD_LIBRARY_PATH at
    process start, hence the re-exec."""
    import os
    bundle = os.environ.get("TESSERA_BUNDLE")
    paths = os.environ.get("LD_LIBRARY_PATH", "").split(":")
    if not bundle or not any(p.startswith(os.path.join(bundle, "lib")) for p in paths):
        return
    env = dict(os.environ)
    original = env.get("TESSERA_ORIG_LD_LIBRARY_PATH", "")
    if original:
        env["LD_LIBRARY_PATH"] = original
    else:
        env.pop("LD_LIBRARY_PATH", None)
    env.pop("TESSERA_BUNDLE", None)
    print("hf_baseline: restarting without the bundle's libraries on LD_LIBRARY_PATH",
          file=sys.stderr)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    clean_library_path()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,8,32,128,256")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--prefill-batch", type=int, default=16)
    ap.add_argument("--offline-requests", type=int, default=1000)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--offline-batch", type=int, default=256)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--hidden-size", type=int, default=4096)
    ap.add_argument("--intermediate-size", type=int, default=14336)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    try:
        import torch
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as e:  # the run script reports this and goes on without the baseline
        print(f"hf_baseline: {e}", file=sys.stderr)
        return 3
    if not torch.cuda.is_available():
        print("hf_baseline: torch sees no CUDA device", file=sys.stderr)
        return 3

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=args.hidden_size, intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads, vocab_size=args.vocab,
        max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    t0 = time.time()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.eval()
    model.generation_config.pad_token_id = 0
    load_s = time.time() - t0
    if args.compile:
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    dev = torch.device("cuda")
    out = {"framework": "transformers", "transformers_version": transformers.__version__,
           "torch_version": torch.__version__, "device": torch.cuda.get_device_name(0),
           "dtype": "bfloat16", "compiled": args.compile, "static_cache": True,
           "load_seconds": load_s}
    print(f"transformers {transformers.__version__}, torch {torch.__version__} on "
          f"{out['device']}; random Llama {args.layers}x{args.hidden_size} built in {load_s:.1f} s")

    def generate(ids, new_tokens):
        torch.cuda.synchronize()
        t = time.time()
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, do_sample=False,
                           cache_implementation="static")
        torch.cuda.synchronize()
        return time.time() - t

    def random_ids(batch, length):
        return torch.randint(3, args.vocab, (batch, length), device=dev)

    # Prefill.
    ids = random_ids(args.prefill_batch, args.context)
    with torch.inference_mode():
        model(ids)  # warm-up
        torch.cuda.synchronize()
        times = []
        for _ in range(3):
            t = time.time()
            model(ids)
            torch.cuda.synchronize()
            times.append(time.time() - t)
    prefill_tps = args.prefill_batch * args.context / statistics.median(times)
    out["prefill"] = {"tokens_per_step": args.prefill_batch * args.context,
                      "tokens_per_s": prefill_tps}
    print(f"prefill {args.prefill_batch}x{args.context}: {prefill_tps:.0f} tokens/s")

    # Decode.
    decode = []
    for batch in [int(b) for b in args.batches.split(",") if b]:
        try:
            ids = random_ids(batch, args.context)
            generate(ids, 2)  # warm-up (and compile, with --compile)
            one = generate(ids, 1)
            many = generate(ids, 1 + args.decode_steps)
            step = max(many - one, 1e-9) / args.decode_steps
            decode.append({"batch": batch, "context": args.context, "step_ms": step * 1e3,
                           "tokens_per_s": batch / step})
            print(f"decode batch {batch:4d}, context {args.context}: {step * 1e3:.2f} ms/step")
        except torch.cuda.OutOfMemoryError as e:
            decode.append({"batch": batch, "context": args.context, "error": "out of memory"})
            print(f"decode batch {batch}: out of memory ({e})")
            torch.cuda.empty_cache()
    out["decode"] = decode

    # Offline throughput.
    if args.offline_requests > 0:
        generate(random_ids(min(args.offline_batch, args.offline_requests), args.input_len), 2)
        done = 0
        t = time.time()
        while done < args.offline_requests:
            batch = min(args.offline_batch, args.offline_requests - done)
            generate(random_ids(batch, args.input_len), args.output_len)
            done += batch
        seconds = time.time() - t
        generated = args.offline_requests * args.output_len
        out["offline"] = {"requests": args.offline_requests, "input_len": args.input_len,
                          "output_len": args.output_len, "batch": args.offline_batch,
                          "seconds": seconds, "output_tokens_per_s": generated / seconds,
                          "total_tokens_per_s":
                              (generated + args.offline_requests * args.input_len) / seconds}
        print(f"offline: {args.offline_requests} requests x ({args.input_len} in + "
              f"{args.output_len} out) in {seconds:.2f} s: {generated / seconds:.0f} output "
              f"tokens/s (batches of {args.offline_batch})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
