// Encode throughput of Hugging Face's Rust `tokenizers` (the napi binding
// @anush008/tokenizers 0.6.0, Rust tokenizers 0.22.2) on the same JSONL corpus
// as tokenizer_bench, printing the same fields. Threads: Rust's rayon pool
// inside encodeBatch, sized by RAYON_NUM_THREADS (set by tokenizer_bench.sh).
//
//   node tokenizer_bench_hf.cjs TOKENIZER_JSON CORPUS.jsonl LABEL [MIN_SECONDS]
// Resolves the package through NODE_PATH (e.g. /tmp/refclients/node_modules).
const fs = require('fs');
const { Tokenizer } = require('@anush008/tokenizers');

(async () => {
  const [tokPath, corpusPath, label, minSecondsArg] = process.argv.slice(2);
  const minSeconds = Number(minSecondsArg ?? 2);
  const docs = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.length > 0)
    .map((l) => JSON.parse(l).text);
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
  const tok = Tokenizer.fromFile(tokPath);
  const opts = { addSpecialTokens: false };
  // Warm-up pass and checksum (FNV-1a over the 32-bit ids, as tokenizer_bench).
  let t0 = process.hrtime.bigint();
  const encodings = await tok.encodeBatch(docs, opts);
  const pass = Math.max(1e-6, Number(process.hrtime.bigint() - t0) / 1e9);
  let checksum = 2166136261, tokens = 0;
  for (const e of encodings) {
    for (const id of e.getIds()) { checksum = Math.imul((checksum ^ id) >>> 0, 16777619) >>> 0; }
    tokens += e.getLength();
  }
  const reps = Math.floor(minSeconds / pass) + 1;
  t0 = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) await tok.encodeBatch(docs, opts);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const threads = process.env.RAYON_NUM_THREADS ?? 'rayon-default';
  console.log(`impl=hf-rust corpus=${label} docs=${docs.length} bytes=${bytes} tokens=${tokens} ` +
    `checksum=${checksum.toString(16).padStart(8, '0')} threads=${threads} ` +
    `MB/s=${(reps * bytes / secs / 1e6).toFixed(2)} tokens/s=${(reps * tokens / secs).toFixed(0)}`);
})();
