// The proxy's error boundary: an unexpected error (a bug, not a GatewayError)
// is answered in the route's protocol shape with a generic message that never
// quotes it, and logged once with its stack, free of secrets. A GatewayError
// is answered as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log/logger.ts';
import { NoAccountError, type AcquireRequest, type Lease } from '../../src/pool/types.ts';
import { FakePool, startProxy, systemTestClock } from '../support/proxy-harness.ts';
import { LogCapture } from '../support/stack.ts';

const SECRET = 'ya29.a0AfB_leakedAccessToken0123456789';
const BUG = `Cannot read properties of undefined (reading '${SECRET}')`;

/** A pool with a bug: acquire throws a TypeError whose text holds a token. */
class BrokenPool extends FakePool {
  fail: () => Error = () => new TypeError(BUG);
  override async acquire(_req: AcquireRequest): Promise<Lease> {
    throw this.fail();
  }
}

const chat = { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] };
const ROUTES: { name: string; method: string; path: string; body?: unknown; check: (status: number, body: any) => void }[] = [
  {
    name: 'OpenAI chat completions',
    method: 'POST',
    path: '/v1/chat/completions',
    body: chat,
    check: (status, b) => {
      assert.deepEqual(Object.keys(b), ['error']);
      assert.equal(typeof b.error.message, 'string');
      assert.equal(b.error.type, 'server_error');
      assert.equal(b.error.code, 'internal_error');
    },
  },
  {
    name: 'OpenAI model list',
    method: 'GET',
    path: '/v1/models',
    check: (_s, b) => {
      assert.equal(b.error.type, 'server_error');
      assert.equal(b.error.code, 'internal_error');
    },
  },
  {
    name: 'Anthropic messages',
    method: 'POST',
    path: '/v1/messages',
    body: { ...chat, max_tokens: 16 },
    check: (_s, b) => {
      assert.equal(b.type, 'error');
      assert.equal(b.error.type, 'api_error');
      assert.equal(typeof b.error.message, 'string');
    },
  },
  {
    name: 'Gemini generateContent',
    method: 'POST',
    path: '/v1beta/models/gemini-2.5-flash:generateContent',
    body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
    check: (status, b) => {
      assert.deepEqual(Object.keys(b), ['error']);
      assert.equal(b.error.code, status);
      assert.equal(b.error.status, 'INTERNAL');
      assert.equal(typeof b.error.message, 'string');
    },
  },
];

test('an unexpected error is answered in each route\'s protocol shape, without its text, and logged once with its stack', async () => {
  const logs = new LogCapture();
  const pool = new BrokenPool(systemTestClock);
  const h = await startProxy({ pool, logger: createLogger({ destination: logs.stream as never }) });
  try {
    for (const r of ROUTES) {
      logs.lines.length = 0;
      const res = await fetch(h.url + r.path, {
        method: r.method,
        headers: { 'content-type': 'application/json' },
        body: r.body === undefined ? undefined : JSON.stringify(r.body),
      });
      const text = await res.text();
      assert.equal(res.status, 500, `${r.name}: ${text}`);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      r.check(res.status, JSON.parse(text));
      assert.match(text, /see its log/, r.name);
      assert.doesNotMatch(text, /Cannot read|TypeError|ya29|at (file|node):/, `${r.name}: the client never sees the error's text or a stack`);

      const errors = logs.lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1, `${r.name}: logged once: ${logs.text()}`);
      const err = errors[0]!.err as { name: string; stack: string };
      assert.equal(err.name, 'TypeError');
      assert.match(err.stack, /TypeError: Cannot read properties of undefined \(reading '\[redacted\]'\)\n\s+at .*proxy-errors\.test\.ts/);
      assert.doesNotMatch(logs.text(), /ya29\./, `${r.name}: no token in the log`);
      assert.ok(errors[0]!.route, 'the route is named');
    }
    const entries = h.requestLog.query();
    assert.ok(entries.some((e) => /^internal error: /.test(e.error ?? '')), 'the request log tells the admin it was internal');
    for (const e of entries) assert.doesNotMatch(String(e.error ?? ''), /ya29\./, 'no token in the request log');
  } finally {
    await h.close();
  }
});

test('a GatewayError is answered as it is: its status, message, code and Retry-After', async () => {
  const pool = new BrokenPool(systemTestClock);
  pool.fail = () => new NoAccountError('all_cooling_down', 'Every account is cooling down for gemini-2.5-flash.', 429, 42);
  const h = await startProxy({ pool });
  try {
    const res = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat) });
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '42');
    assert.equal(body.error.message, 'Every account is cooling down for gemini-2.5-flash.');
    assert.equal(body.error.type, 'rate_limit_error');
    assert.equal(body.error.code, 'all_cooling_down');
  } finally {
    await h.close();
  }
});
