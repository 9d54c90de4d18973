// Drives a Tessera router's OpenAI-compatible HTTP API with the official
// `openai` SDK, for tests/integration/openai_sdk_test.cc, which asserts on
// what this prints. One call per run:
//   node openai_client.cjs BASE_URL OP '<json>'
// OP: completion | chat   (json: the create() params; "stream": true collects
//                          the chunks), models, concurrent (json: {"count",
//                          "kind": "chat"|"completion", "params"}: count
//                          calls at once).
// Options in json._client: {"apiKey", "maxRetries"}. Prints one JSON object:
//   {"ok": true, "result": ..., "fetches": N}   or
//   {"ok": false, "error": {"class", "status", "message", "type", "param",
//    "code"}, "fetches": N, "partial": ...}
// where `fetches` counts the HTTP requests the SDK made (its own retries
// included) and `partial` is what a stream delivered before an error.
// Resolves `openai` through NODE_PATH (the test installs it with
// deploy/install-test-clients.sh).
'use strict';
const { OpenAI } = require('openai');

const [baseURL, op, json] = process.argv.slice(2);
const params = JSON.parse(json || '{}');
const clientOptions = params._client || {};
delete params._client;

let fetches = 0;
const client = new OpenAI({
  baseURL,
  apiKey: clientOptions.apiKey ?? 'sk-none',
  maxRetries: clientOptions.maxRetries ?? 0,
  timeout: 60000,
  fetch: (url, init) => {
    fetches += 1;
    return fetch(url, init);
  },
});

function describe(e) {
  return {
    class: e.constructor.name,
    status: e.status ?? null,
    message: e.message,
    type: e.type ?? e.error?.type ?? null,
    param: e.param ?? e.error?.param ?? null,
    code: e.code ?? e.error?.code ?? null,
  };
}

// A stream's chunks, and per choice index the joined text / content.
async function collect(stream, partial) {
  for await (const chunk of stream) {
    partial.chunks.push(chunk);
    for (const c of chunk.choices) {
      const piece = c.text ?? c.delta?.content ?? '';
      partial.text[c.index] = (partial.text[c.index] ?? '') + piece;
      if (c.finish_reason) partial.finish[c.index] = c.finish_reason;
    }
  }
  return partial;
}

async function create(kind, p, partial) {
  const api = kind === 'chat' ? client.chat.completions : client.completions;
  if (p.stream) return collect(await api.create(p), partial);
  return api.create(p);
}

async function main() {
  const partial = { chunks: [], text: {}, finish: {} };
  try {
    let result;
    if (op === 'completion' || op === 'chat') {
      result = await create(op, params, partial);
    } else if (op === 'models') {
      result = await client.models.list();
      result = { data: result.data };
    } else if (op === 'concurrent') {
      const api = params.kind === 'completion' ? client.completions : client.chat.completions;
      const calls = [];
      for (let i = 0; i < params.count; ++i) calls.push(api.create(params.params));
      const settled = await Promise.allSettled(calls);
      result = settled.map((s) =>
        s.status === 'fulfilled' ? { ok: true, value: s.value } : { ok: false, error: describe(s.reason) });
    } else {
      throw new Error(`unknown op ${op}`);
    }
    console.log(JSON.stringify({ ok: true, result, fetches }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: describe(e), fetches, partial }));
  }
}

main();
