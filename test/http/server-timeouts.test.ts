// Slow clients (SPEC section 11): a client that sends its headers or body too
// slowly is cut off with 408 and lets go of its connection; the response side
// is not bounded, so a long streamed answer still works. Raw sockets, short limits.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

// Short, but not so short that a loaded machine's own fetch trips them.
const LIMITS = { headersTimeoutMs: 1000, bodyIdleTimeoutMs: 1000, requestTimeoutMs: 2500 };
let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({ accounts: ['a'], clientLimits: LIMITS });
});
after(() => h.close());

interface Raw {
  socket: Socket;
  /** Everything received so far. */
  text(): string;
  /** Resolves when the server closes the connection, with the ms since it was opened. */
  closed: Promise<number>;
}

function open(): Promise<Raw> {
  const port = Number(new URL(h.url).port);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect(port, '127.0.0.1');
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (got += d));
    socket.on('error', () => {});
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - t0)));
    socket.once('connect', () => resolve({ socket, text: () => got, closed }));
    socket.once('error', reject);
  });
}

/** Writes `text` a few bytes at a time every `everyMs` until done or the socket closes. */
function trickle(raw: Raw, text: string, everyMs: number, bytes = 1): void {
  let i = 0;
  const timer = setInterval(() => {
    if (i >= text.length || raw.socket.destroyed) return clearInterval(timer);
    raw.socket.write(text.slice(i, i + bytes));
    i += bytes;
  }, everyMs);
  raw.socket.once('close', () => clearInterval(timer));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: still open after ${ms} ms`)), ms))]);
}

function jsonOf(answer: string): any {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

test('slow headers (slowloris) are cut off with 408 and every socket is closed', async () => {
  const sockets = await Promise.all(Array.from({ length: 30 }, () => open()));
  for (const s of sockets) trickle(s, 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ' + 'a'.repeat(200), 50);
  const times = await withTimeout(Promise.all(sockets.map((s) => s.closed)), 8000, 'slowloris sockets');
  assert.ok(Math.max(...times) < 6000, `closed after ${Math.max(...times)} ms`);
  for (const s of sockets) {
    assert.match(s.text(), /^HTTP\/1\.1 408 /);
    assert.equal(jsonOf(s.text()).error.code, 'request_timeout');
  }
});

test('a body that stops arriving gets 408 in the route\'s shape and the connection is closed', async () => {
  const s = await open();
  s.socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n');
  s.socket.write('{"model":"gpt-4o","messages":[' + ' '.repeat(100_000));
  const ms = await withTimeout(s.closed, 8000, 'stalled body');
  assert.match(s.text(), /^HTTP\/1\.1 408 /);
  const body = jsonOf(s.text());
  assert.equal(body.error.code, 'request_timeout', 'OpenAI error shape');
  assert.match(body.error.message, /body stopped arriving/);
  assert.ok(ms < 6000, `closed after ${ms} ms`);
});

test('a body that trickles in without pauses is cut off by the whole-request deadline', async () => {
  const s = await open();
  s.socket.write('POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{');
  trickle(s, ' '.repeat(4999), 50, 10);
  const ms = await withTimeout(s.closed, 10_000, 'trickling body');
  assert.match(s.text(), /^HTTP\/1\.1 408 /);
  assert.ok(ms >= LIMITS.requestTimeoutMs - 100 && ms < 8000, `closed after ${ms} ms`);
  assert.equal(h.upstream.requests.length, 0, 'nothing reached the upstream');
});

test('a streamed answer may take longer than every request deadline', async () => {
  let release!: () => void;
  h.upstream.script({ parts: [{ text: 'first part of a long answer, then the rest' }], chunkChars: 10, pauseAfterChunks: 1, resume: new Promise<void>((r) => (release = r)) });
  const t0 = Date.now();
  setTimeout(() => release(), LIMITS.requestTimeoutMs + 1000);
  const r = await fetch(`${h.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.ok(Date.now() - t0 > LIMITS.requestTimeoutMs + 900, 'the answer took longer than the request deadline');
  assert.match(text, /data: \[DONE\]/);
  const content = text
    .split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '')
    .join('');
  assert.equal(content, 'first part of a long answer, then the rest');
});

test('an idle keep-alive connection between requests is not a slow request', async () => {
  const s = await open();
  s.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await new Promise((r) => setTimeout(r, 200));
  assert.match(s.text(), /^HTTP\/1\.1 200 /);
  s.socket.destroy();
});
