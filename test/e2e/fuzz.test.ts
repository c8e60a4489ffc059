// Hostile requests against a real gateway (issuer and Gemini stand-ins, one
// account): every field of every door with wrong types, lone surrogates, huge
// and deep bodies, bad JSON and UTF-8, odd headers, CRLF and malformed HTTP on
// raw sockets, path traversal on /google/ and the dashboard. A deterministic
// seeded generator; for each answer: no 5xx (except a 502/503/504 that says
// why), no stack trace, no secret, no hang; the gateway is healthy afterwards.
//   FUZZ_SEED=<n> FUZZ_COUNT=<n> node --test test/e2e/fuzz.test.ts
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Agent } from 'undici';
import { startStack, type Stack } from '../support/stack.ts';
import { mulberry32 } from '../support/seeded-random.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 17);
const COUNT = Number(process.env.FUZZ_COUNT ?? 10_000);
const CONCURRENCY = 12;
const PER_REQUEST_MS = 15_000;

// ---------------------------------------------------------------------------
// Deterministic randomness

class Gen {
  readonly next: () => number;
  constructor(next: () => number) {
    this.next = next;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const LONE = ['\ud800', '\udfff', 'a\ud83dz', '\udc00\ud800'];

/** A hostile value for any field. */
function hostileValue(g: Gen, depth = 0): unknown {
  switch (g.int(16)) {
    case 0: return null;
    case 1: return g.pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 3.5]);
    case 2: return g.pick([true, false]);
    case 3: return g.pick(LONE);
    case 4: return 'x'.repeat(depth > 0 ? 100 : g.chance(0.04) ? 1_500_000 : g.pick([1000, 20_000]));
    case 5: return [];
    case 6: return {};
    case 7: return g.pick(['', ' ', '\u0000', '\r\n', '../../etc/passwd', '%zz', '{{', 'models/../../x', '\u202e', 'ﾟ']);
    case 8: return depth > 0 ? deep(20, true) : deep(g.chance(0.1) ? 2000 : g.pick([50, 300]), g.chance(0.5));
    case 9: return { __proto__: { polluted: true }, constructor: { prototype: 1 } };
    case 10: return JSON.parse('{"__proto__": {"x": 1}}');
    case 11: {
      const n = g.chance(0.1) ? 5000 : g.pick([3, 50]);
      return Array.from({ length: n }, () => (n <= 50 && depth < 2 ? hostileValue(g, depth + 1) : g.pick([1, 'a', null, {}])));
    }
    case 12: return { type: g.pick(['text', 'image', 'tool_use', 'function', 'input_text', 'nonsense']), text: hostileValue(g, depth + 1) };
    case 13: return { role: g.pick(['user', 'assistant', 'system', 'tool', 'model', 'developer', 'x']), content: depth < 2 ? hostileValue(g, depth + 1) : 'hi' };
    case 14: return { $ref: g.pick(['#/definitions/%zz', '#/$defs/a%2', 'http://x/y', '#/../../x']), definitions: {} };
    default: return String(g.int(1e9));
  }
}

/** A value nested `levels` deep (objects or arrays). */
function deep(levels: number, arrays: boolean): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < levels; i++) v = arrays ? [v] : { a: v };
  return v;
}

/** Replaces one field somewhere in `obj` (or adds one) with a hostile value. */
function mutate(g: Gen, obj: unknown, depth = 0): unknown {
  if (obj === null || typeof obj !== 'object' || depth > 6 || g.chance(0.15)) return hostileValue(g);
  if (Array.isArray(obj)) {
    const copy = [...obj];
    if (copy.length === 0 || g.chance(0.2)) copy.push(hostileValue(g));
    else {
      const i = g.int(copy.length);
      copy[i] = mutate(g, copy[i], depth + 1);
    }
    return copy;
  }
  const copy: Record<string, unknown> = { ...(obj as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0 || g.chance(0.15)) copy[g.pick(['extra', 'tools', 'stream', 'model', '__proto__', 'x'.repeat(300), '\ud800'])] = hostileValue(g);
  else if (g.chance(0.1)) delete copy[g.pick(keys)];
  else {
    const k = g.pick(keys);
    copy[k] = mutate(g, copy[k], depth + 1);
  }
  return copy;
}

// ---------------------------------------------------------------------------
// Valid starting points for every door

const tool = { type: 'function', function: { name: 'get_weather', description: 'w', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const DOORS: { method: string; path: string; body: unknown; headers?: Record<string, string> }[] = [
  {
    method: 'POST', path: '/v1/chat/completions',
    body: { model: 'gpt-4o', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"x"}' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'sunny' }], tools: [tool], tool_choice: 'auto', temperature: 0.5, max_tokens: 20, stream: false, response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object', properties: { a: { type: 'string' } } } } } },
  },
  { method: 'POST', path: '/v1/chat/completions', body: { model: 'gemini-2.5-flash', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] } },
  {
    method: 'POST', path: '/v1/responses',
    body: { model: 'gpt-4o', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }], instructions: 'brief', tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }], stream: false, store: false, reasoning: { effort: 'low' }, text: { format: { type: 'text' } } },
  },
  {
    method: 'POST', path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' },
    body: { model: 'claude-sonnet-4-6', max_tokens: 50, system: [{ type: 'text', text: 'brief' }], messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }, { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'get_weather', input: { city: 'x' } }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'sunny' }] }], tools: [{ name: 'get_weather', description: 'w', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }], stream: false, thinking: { type: 'enabled', budget_tokens: 1024 } },
  },
  { method: 'POST', path: '/v1/messages/count_tokens', headers: { 'anthropic-version': '2023-06-01' }, body: { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] } },
  {
    method: 'POST', path: '/v1beta/models/gemini-2.5-flash:generateContent',
    body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], systemInstruction: { parts: [{ text: 'brief' }] }, generationConfig: { temperature: 0.2, maxOutputTokens: 20, thinkingConfig: { thinkingBudget: 0 } }, tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'OBJECT', properties: {} } }] }], safetySettings: [] },
  },
  { method: 'POST', path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
  { method: 'POST', path: '/v1beta/models/gemini-2.5-flash:countTokens', body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
  { method: 'POST', path: '/v1/models/gemini-2.5-flash:countTokens', body: { generateContentRequest: { model: 'models/gemini-2.5-flash', contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } } },
  { method: 'POST', path: '/api/accounts', body: { refresh_token: '1//x' } },
  { method: 'PATCH', path: '/api/accounts/nope', body: { proxy_disabled: true } },
  { method: 'POST', path: '/api/oauth/complete', body: { callback_url: 'http://localhost/oauth2callback?state=x&code=y' } },
];

const PATHS = [
  '/google/../../etc/passwd', '/google/%2e%2e/%2e%2e/etc/passwd', '/google/drive/v3/../../../../x', '/google/..%2f..%2fadmin', '/google/%252e%252e/x',
  '/google/drive\\..\\..\\x', '/google/%00', '/google/a%zzb', '/google/' + 'a/'.repeat(500), '/google//evil.example/x', '/google/@evil.example/x',
  '/google/http://evil.example/', '/google/drive/v3/files?alt=media&key=abc&%zz=1', '/google/oauth2/v3/userinfo',
  '/assets/../../config.json', '/assets/..%2f..%2fconfig.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/../session.ts', '/%2e%2e/%2e%2e/etc/passwd',
  '/assets/app.js%00.png', '/assets/', '/assets/..', '/login?next=//evil.example', '/oauth2callback?state=%zz&code=%00', '/oauth2callback?error=access_denied&state=' + 'x'.repeat(5000),
  '/v1beta/models/%zz:generateContent', '/v1beta/models/..%2f..%2fx:generateContent', '/v1beta/models/gemini-2.5-flash:nonsense', '/v1beta/models/' + 'm'.repeat(3000),
  '/v1/models/%F0%9F%98%80', '/v1/models/gemini-2.5-flash', '/v1beta/models?pageSize=-1&pageToken=%zz', '/api/accounts/..%2f..%2fconfig', '/api/requests?limit=NaN&status=%zz',
  '/api/usage?days=1e309', '/metrics', '/healthz?x=%zz', '/' + 'z'.repeat(8000), '/%', '/?%', '/v1/chat/completions/../../api/status',
];

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

interface Planned {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

function plan(g: Gen, admin: string): Planned {
  const r = g.int(100);
  if (r < 62) {
    const door = g.pick(DOORS);
    const body = JSON.stringify(g.chance(0.1) ? hostileValue(g) : mutate(g, door.body));
    const headers: Record<string, string> = { 'content-type': 'application/json', ...door.headers };
    if (door.path.startsWith('/api/')) headers.authorization = `Bearer ${admin}`;
    return { kind: `door ${door.path}`, method: door.method, path: door.path, headers, body };
  }
  if (r < 74) {
    const door = g.pick(DOORS);
    const raw = [
      () => '{"model": "gpt-4o", "messages": [',
      () => '\u0000\u0001{}',
      () => '',
      () => 'null',
      () => '[]',
      () => '"' + '\\ud800'.repeat(50) + '"',
      () => '{"a":' + '['.repeat(100) + ']'.repeat(100) + '}',
      () => '{"model":"x","model":"y"}',
      () => '1e99999',
      () => '{"messages": [{"role": "user", "content": "' + 'é'.repeat(100_000) + '"}], "model": "gpt-4o"}',
    ];
    const text = g.pick(raw)();
    const body = g.chance(0.2) ? new Uint8Array([0x7b, 0xff, 0xfe, 0xc3, 0x28, 0x7d]) : text;
    return { kind: `raw ${door.path}`, method: 'POST', path: door.path, headers: { 'content-type': g.pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']), ...door.headers }, body };
  }
  if (r < 90) {
    const method = g.pick(METHODS);
    return { kind: 'path', method, path: g.pick(PATHS), headers: g.chance(0.5) ? { authorization: `Bearer ${admin}` } : {}, body: method === 'POST' || method === 'PUT' ? '{}' : undefined };
  }
  const door = g.pick(DOORS);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...door.headers };
  const name = g.pick(['x-grantpool-account', 'x-grantpool-session', 'anthropic-version', 'anthropic-beta', 'x-api-key', 'x-goog-api-key', 'authorization', 'origin', 'accept', 'accept-encoding', 'x-goog-user-project', 'content-encoding']);
  headers[name] = g.pick(['', ' ', 'x'.repeat(6000), 'Bearer', 'Bearer \u00e9', 'nobody@example.com', '..', 'gzip', 'br, deflate, *', 'null', 'text/event-stream', '2023-06-01, 2099-01-01']);
  return { kind: `header ${name}`, method: door.method, path: door.path, headers, body: JSON.stringify(door.body) };
}

/** Malformed HTTP on a raw socket (fetch cannot send these). */
function rawRequest(g: Gen): string {
  const body = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}';
  return g.pick([
    () => `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: b\rInjected: c\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    () => `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\nContent-Length: ${body.length}\n\n${body}`,
    () => `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    () => `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    () => `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    () => `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    () => `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n X-Folded: b\r\n\r\n`,
    () => `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Nul: a\u0000b\r\n\r\n`,
    () => `G\u00c9T /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    () => `GET /healthz HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n`,
    () => `GET http://evil.example/google/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    () => `GET /google/../../x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    () => `GET ${'/a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    () => `\r\n\r\n\r\n`,
    () => `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n`,
    () => `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999\r\n\r\n`,
  ])();
}

// ---------------------------------------------------------------------------

const STACK_TRACE = /\n\s+at \S+ \(|\bat (async )?\S+ \((file|node):|node:internal|\.ts:\d+:\d+|TypeError|ReferenceError|SyntaxError: /;
let stack: Stack;
let secrets: string[] = [];

before(async () => {
  stack = await startStack();
  stack.issuer.addUser({ email: 'fuzz@example.com', name: 'Fuzz' });
  await stack.addAccount('fuzz@example.com');
  const file = await stack.accountFile('fuzz@example.com');
  secrets = [file.token.refresh_token, file.token.access_token, stack.issuer.client.client_secret, stack.env.GRANTPOOL_ADMIN_TOKEN!];
});
after(() => stack.close());

interface Finding {
  kind: string;
  request: string;
  status: number;
  problem: string;
  body: string;
}

/** What is wrong with one answer, or null. */
function judge(status: number, body: string, secretsToFind: string[]): string | null {
  if (status >= 500 && !([502, 503, 504].includes(status) && /"message"\s*:\s*"[^"]{10,}/.test(body))) return `status ${status}`;
  if (STACK_TRACE.test(body)) return 'stack trace in the body';
  for (const s of secretsToFind) if (s && body.includes(s)) return 'a secret in the body';
  if (/root:x:0:0|"devDependencies"|"admin_token"/.test(body)) return 'a file outside the assets in the body';
  return null;
}

function raw(port: number, text: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('hang'));
    }, PER_REQUEST_MS);
    s.setEncoding('latin1');
    s.on('data', (d) => {
      got += d;
      // One answer is enough: stop after its headers and declared body.
      const end = got.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(got.slice(0, end));
      if (end >= 0 && len && got.length >= end + 4 + Number(len[1])) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      resolve({ status: m ? Number(m[1]) : 0, body: got.slice(got.indexOf('\r\n\r\n') + 4) });
    });
    s.end(text);
  });
}

test(`${COUNT} hostile requests (seed ${SEED}): no 5xx without a reason, no stack trace, no secret, no hang; healthy afterwards`, { timeout: 900_000 }, async () => {
  const g = new Gen(mulberry32(SEED));
  const base = stack.gateway.url;
  const port = Number(new URL(base).port);
  const admin = stack.env.GRANTPOOL_ADMIN_TOKEN!;
  const dispatcher = new Agent({ connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 10_000 });
  const findings: Finding[] = [];
  const statuses = new Map<number, number>();
  const kinds = new Map<string, { n: number; ms: number }>();
  let done = 0;
  const t0 = Date.now();

  const jobs = Array.from({ length: COUNT }, (_, i) => i);
  async function worker(): Promise<void> {
    for (;;) {
      const i = jobs.shift();
      if (i === undefined) return;
      let status: number;
      let body: string;
      let what: string;
      let kind: string;
      const started = Date.now();
      if (g.int(100) < 8) {
        const text = rawRequest(g);
        kind = 'raw http';
        what = JSON.stringify(text.slice(0, 160));
        ({ status, body } = await raw(port, text).catch((e: Error) => ({ status: -1, body: e.message })));
        // A malformed request may be answered 400/431/413, or the connection closed (0).
      } else {
        const p = plan(g, admin);
        kind = p.kind;
        what = `${p.method} ${p.path.slice(0, 120)} ${JSON.stringify(p.headers).slice(0, 120)} ${typeof p.body === 'string' ? p.body.slice(0, 200) : ''}`;
        try {
          const res = await fetch(base + p.path, {
            method: p.method,
            headers: p.headers,
            body: p.method === 'GET' || p.method === 'HEAD' ? undefined : p.body,
            redirect: 'manual',
            signal: AbortSignal.timeout(PER_REQUEST_MS),
            dispatcher,
          } as RequestInit);
          status = res.status;
          body = await res.text();
        } catch (e) {
          const err = e as Error & { cause?: { code?: string } };
          // fetch refuses some header values itself (not a gateway answer); a timeout is a hang.
          if (err.name === 'TypeError' && !/fetch failed/.test(err.message)) {
            status = 0;
            body = '';
          } else {
            status = -1;
            body = `${err.name}: ${err.message} ${err.cause?.code ?? ''}`;
          }
        }
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const k = kinds.get(kind) ?? { n: 0, ms: 0 };
      k.n++;
      k.ms += Date.now() - started;
      kinds.set(kind, k);
      const problem = status === -1 ? `no answer (${body})` : judge(status, body, secrets);
      if (problem) findings.push({ kind, request: what, status, problem, body: body.slice(0, 300) });
      done++;
      if (process.env.FUZZ_PROGRESS && done % 1000 === 0) console.error(`fuzz: ${done} done after ${Date.now() - t0} ms`);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (Date.now() - t0) / 1000;
  await dispatcher.close();

  const summary = [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ');
  console.log(`fuzz: ${done} requests in ${seconds.toFixed(1)} s (seed ${SEED}); statuses ${summary}; ${findings.length} findings`);
  if (process.env.FUZZ_PROGRESS) {
    for (const [k, v] of [...kinds].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) console.log(`  ${k}: ${v.n} requests, ${(v.ms / v.n).toFixed(0)} ms each`);
  }
  for (const f of findings.slice(0, 20)) console.log(`  FINDING [${f.kind}] ${f.problem}: ${f.request}\n    -> ${f.status} ${f.body}`);
  assert.equal(done, COUNT);
  assert.deepEqual(findings.slice(0, 10), [], `${findings.length} hostile requests got a bad answer`);

  // Path traversal never left the configured Google API base.
  for (const r of stack.upstream.requests) assert.ok(!/(^|\/)\.\.(\/|$)/.test(r.path), `upstream saw ${r.path}`);

  // Healthy afterwards: health, a normal request on each door, and no leftover stream.
  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');
  const ok = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'still fine?' }] }) });
  assert.equal(ok.status, 200);
  const gem = await fetch(`${base}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }) });
  assert.equal(gem.status, 200);
  // (Not through /api: the fuzzed admin tokens have this address throttled for a minute.)
  const id = (await stack.accountFile('fuzz@example.com')).id;
  assert.equal(stack.gateway.pool.stateOf(id)?.state, 'active', 'the account is still in service');
});
