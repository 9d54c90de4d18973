#!/usr/bin/env python3
"""Writes the generated part of the fuzz seed corpora (tests/fuzz/corpus/).

The hand-written seeds (HTTP requests, model configs, the stories260K files,
chat templates) are committed as they are; this makes the ones derived from
../shared and from the proto schema, so they can be remade after a change:
  safetensors/        small valid files (stories260K's tensor names at tiny
                      shapes; every dtype) and stories260K's real header
                      with its data cut off
  tokenizer_json/     Qwen3's and Mistral's tokenizer.json cut to their first
                      1,000 ids (the same components, a small vocabulary)
  chat_template/      Qwen3's chat template (from tokenizer_config.json)
  generate_request/   GenerateRequest messages (proto bytes, via protoc)
Usage: python3 tests/fuzz/make_seeds.py [SHARED_DIR]   (default ../shared)
"""
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(CORPUS, target, name), mode) as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, element size)] -> file bytes."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for i, (name, dtype, shape, size) in enumerate(tensors):
        n = size
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + n]}
        data += bytes((i + j) % 251 for j in range(n))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the writer pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + data


def make_safetensors():
    with open(os.path.join(SHARED, "models/stories260K/model.safetensors"), "rb") as f:
        real = f.read()
    n = struct.unpack("<Q", real[:8])[0]
    header = json.loads(real[8:8 + n])
    tiny = [(name, "F32", [2] * len(v["shape"]), 4)
            for name, v in header.items() if name != "__metadata__"]
    write("safetensors", "stories260k_tiny_shapes.safetensors",
          safetensors(tiny, {"format": "pt"}))
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "F64": 8, "I8": 1, "U8": 1,
             "BOOL": 1, "F8_E4M3": 1}
    every = [(f"t.{d.lower()}", d, [3, 2] if i % 2 else [5], s)
             for i, (d, s) in enumerate(sizes.items())]
    every.append(("scalar", "F32", [], 4))
    every.append(("empty", "BF16", [0, 4], 2))
    write("safetensors", "every_dtype.safetensors", safetensors(every, {"note": "seed"}))
    write("safetensors", "stories260k_header_truncated.safetensors", real[:8 + n + 64])


def trim_tokenizer(src, keep):
    with open(src) as f:
        t = json.load(f)
    model = t["model"]
    vocab = {tok: i for tok, i in model["vocab"].items() if i < keep}
    merges = []
    for m in model["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    model["vocab"], model["merges"] = vocab, merges
    renumber = {}
    for i, added in enumerate(sorted(t["added_tokens"], key=lambda a: a["id"])):
        if added["id"] >= keep:
            renumber[added["id"]] = keep + i
            added["id"] = keep + i
    # A post-processor's special tokens name the renumbered ids.
    for special in (t.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [renumber.get(i, i) for i in special.get("ids", [])]
    return json.dumps(t, ensure_ascii=False, separators=(",", ":"))


def make_tokenizers():
    for name in ("qwen3", "mistral"):
        write("tokenizer_json", f"{name}_first_1000_ids.json",
              trim_tokenizer(os.path.join(SHARED, "tokenizers", name, "tokenizer.json"), 1000))


def make_templates():
    with open(os.path.join(SHARED, "tokenizers/qwen3/tokenizer_config.json")) as f:
        write("chat_template", "qwen3.jinja", json.load(f)["chat_template"])


REQUESTS = {
    "text.binpb": 'request_id: "r1" text: "Once upon a time" sampling { max_tokens: 8 }',
    "token_ids.binpb": 'token_ids { ids: [1, 403, 407, 261, 378] } '
                       'sampling { max_tokens: 4 temperature: 0 seed: 7 }',
    "chat.binpb": 'model: "stories260K" chat { messages { role: "system" content: "Be brief." } '
                  'messages { role: "user" content: "Tell a story." } '
                  'messages { role: "assistant" content: "Once" reasoning_content: "think" '
                  'fields_json: "{\\"tool_calls\\": []}" } '
                  'add_generation_prompt: true chat_template_kwargs_json: '
                  '"{\\"enable_thinking\\": false}" } return_text: true',
    "sampling_full.binpb": 'text: "Lily" add_special_tokens: false sampling { max_tokens: 16 '
                           'temperature: 0.7 top_p: 0.9 top_k: 40 min_p: 0.05 seed: 1 '
                           'stop: ["\\n", "The end"] stop_token_ids: [2] ignore_eos: true '
                           'repetition_penalty: 1.1 presence_penalty: 0.5 '
                           'frequency_penalty: -0.5 logprobs: 2 n: 2 } priority: -3 '
                           'return_prompt_token_ids: true',
    "no_max_tokens.binpb": 'text: "Once upon a time there was" sampling { temperature: 1 }',
    "wrong_model.binpb": 'model: "gpt-4" text: "hi"',
}


def make_requests():
    proto_dir = os.path.join(ROOT, "proto")
    for name, text in REQUESTS.items():
        data = subprocess.run(
            ["protoc", f"-I{proto_dir}", "--encode=tessera.v1.GenerateRequest",
             "tessera/v1/llm.proto"], input=text.encode(), check=True,
            capture_output=True).stdout
        write("generate_request", name, data)


if __name__ == "__main__":
    make_safetensors()
    make_tokenizers()
    make_templates()
    make_requests()
