// Thousands of malformed requests to every proxy route: always a 4xx (or a
// normal answer), never a 5xx, never a crash, and memory stays bounded.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({ accounts: ['a', 'b', 'c'], config: { max_body_bytes: 64 * 1024 } });
  h.upstream.setDefaultAnswer({ parts: [{ text: 'ok' }] });
});
after(() => h.close());

/** A small seeded PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUTES: { method: string; path: string; valid: unknown }[] = [
  { method: 'POST', path: '/v1/chat/completions', valid: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } } }] } },
  { method: 'POST', path: '/v1/messages', valid: { model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], tools: [{ name: 'f', input_schema: { type: 'object' } }] } },
  { method: 'POST', path: '/v1/messages/count_tokens', valid: { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] } },
  { method: 'POST', path: '/v1beta/models/gemini-2.5-flash:generateContent', valid: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { temperature: 1 } } },
  { method: 'POST', path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', valid: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
  { method: 'POST', path: '/v1beta/models/gemini-2.5-flash:countTokens', valid: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
  { method: 'POST', path: '/v1/models/gemini-2.5-flash:generateContent', valid: { contents: [{ parts: [{ text: 'hi' }] }] } },
  { method: 'POST', path: '/v1beta/models/gemini-2.5-flash:bogusAction', valid: {} },
  { method: 'POST', path: '/v1beta/models/no-colon', valid: {} },
  { method: 'GET', path: '/v1/models', valid: null },
  { method: 'GET', path: '/v1beta/models', valid: null },
  { method: 'GET', path: '/v1beta/models/gemini-2.5-flash', valid: null },
  { method: 'GET', path: '/v1/models/gpt-4o', valid: null },
  { method: 'GET', path: '/healthz', valid: null },
];

const NASTY_VALUES: unknown[] = [
  null, true, false, 0, -1, 1e308, -1e-308, '', ' ', 'x'.repeat(1000), '\u0000', '\ud800', [], [null], {}, { '': null },
  { __proto__: { polluted: true } }, { constructor: { prototype: {} } }, [[[[[]]]]], 'data:image/png;base64,!!!', 'http://169.254.169.254/',
  { type: 'image_url', image_url: { url: 'http://127.0.0.1/x.png' } }, { role: 'tool' }, { type: 'tool_result' }, NaN,
];

function mutate(value: unknown, rnd: () => number, depth = 0): unknown {
  if (depth > 6) return value;
  const r = rnd();
  if (r < 0.12) return NASTY_VALUES[Math.floor(rnd() * NASTY_VALUES.length)];
  if (Array.isArray(value)) {
    const out = value.map((v) => (rnd() < 0.5 ? mutate(v, rnd, depth + 1) : v));
    if (rnd() < 0.2) out.push(NASTY_VALUES[Math.floor(rnd() * NASTY_VALUES.length)]);
    if (rnd() < 0.1) out.length = 0;
    return out;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const k of Object.keys(out)) {
      const c = rnd();
      if (c < 0.15) delete out[k];
      else if (c < 0.6) out[k] = mutate(out[k], rnd, depth + 1);
    }
    if (rnd() < 0.2) out[`extra_${Math.floor(rnd() * 100)}`] = NASTY_VALUES[Math.floor(rnd() * NASTY_VALUES.length)];
    return out;
  }
  return value;
}

function rawBodies(rnd: () => number, valid: unknown): (string | Buffer)[] {
  const text = JSON.stringify(valid ?? {});
  const cut = Math.floor(rnd() * text.length);
  return [
    '',
    '{',
    'null',
    '[]',
    '"just a string"',
    '12345',
    text.slice(0, cut),
    text.replace(/"/g, "'"),
    Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    Buffer.from([0xc3, 0x28]),
    '['.repeat(50_000) + ']'.repeat(50_000),
    `{"a":"${'z'.repeat(70 * 1024)}"}`,
    '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
    `{"contents": [{"role": "user", "parts": [{"text": "\\ud800"}]}]}`,
  ];
}

interface Result {
  status: number;
  route: string;
  body: string;
}

async function send(method: string, path: string, body: string | Buffer | null, headers: Record<string, string> = {}): Promise<Result> {
  const res = await fetch(h.url + path, {
    method,
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: method === 'GET' || body === null ? null : typeof body === 'string' ? body : new Uint8Array(body),
  });
  const text = await res.text();
  return { status: res.status, route: `${method} ${path}`, body: text.slice(0, 300) };
}

test('malformed requests get 4xx answers in the protocol shape, never a 5xx or a crash, with bounded memory', async () => {
  const rnd = prng(20260101);
  const jobs: (() => Promise<Result>)[] = [];
  for (const route of ROUTES) {
    if (route.method === 'GET') {
      for (const q of ['', '?key=', '?pageSize=-1', '?pageToken=%ff', '?alt=sse&beta=true', '?' + 'x=1&'.repeat(500)]) {
        jobs.push(() => send('GET', route.path + q, null));
      }
      jobs.push(() => send('POST', route.path, '{}'));
      continue;
    }
    for (const raw of rawBodies(rnd, route.valid)) jobs.push(() => send('POST', route.path, raw));
    for (let i = 0; i < 330; i++) {
      const body = JSON.stringify(mutate(route.valid, rnd)) ?? 'null';
      jobs.push(() => send('POST', route.path, body));
    }
    jobs.push(() => send('PUT', route.path, '{}'));
    jobs.push(() => send('POST', `${route.path}${route.path.includes('?') ? '&' : '?'}beta=true`, JSON.stringify(route.valid)));
  }
  for (let i = 0; i < 100; i++) {
    const p = ['/google/', '/google/%', '/google/..%2f..%2fetc/passwd', `/google/${'a/'.repeat(200)}`, '/google/x?key=k&key=j'][i % 5]!;
    jobs.push(() => send(['GET', 'POST', 'DELETE', 'PATCH'][i % 4]!, p, i % 4 === 0 ? null : '{"x":1}', { 'x-grantpool-account': i % 3 ? 'nobody' : 'a' }));
  }

  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const results: Result[] = [];
  const total = jobs.length;
  assert.ok(total >= 3000, `${total} requests`);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        results.push(await job());
      }
    }),
  );
  const fives = results.filter((r) => r.status >= 500);
  assert.deepEqual(fives.slice(0, 5), [], 'no 5xx');
  assert.equal(results.length, total);
  // Error answers are JSON in a protocol's shape.
  for (const r of results.filter((x) => x.status >= 400)) {
    const parsed = JSON.parse(r.body.length < 300 ? r.body : '{"error":{}}');
    assert.ok(parsed.error || parsed.type === 'error', `${r.route}: ${r.body}`);
  }
  // The gateway is still healthy and serves a normal request.
  assert.equal((await send('POST', '/v1beta/models/gemini-2.5-flash:generateContent', JSON.stringify(ROUTES[3]!.valid))).status, 200);
  gc();
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${Math.round(grown / 1048576)} MB`);
  assert.ok(h.requestLog.size <= h.config.request_log_size);
});
