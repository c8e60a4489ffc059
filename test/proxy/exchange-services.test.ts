// One exchange over several services: the target is built for each lease, so
// a request fails over from a Gemini API lane to a Vertex lane (same account
// or another) and between Vertex lanes; Vertex AI gets the bearer token only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigSchema } from '../../src/config/schema.ts';
import { ClientAbort, openUpstream, type AttemptSpec, type EngineDeps } from '../../src/proxy/engine.ts';
import { createUpstreamClient } from '../../src/proxy/upstream-client.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { FakePool, systemTestClock } from '../support/proxy-harness.ts';
import type { Lease } from '../../src/pool/types.ts';

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server that answers each path with the next status queued for it (200 once the queue is empty). */
async function recorder(answers: Record<string, number[]>) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ path: req.url!, headers: req.headers, body });
      const status = answers[req.url!]?.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      if (status === 200) res.end(JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] } }] }));
      else if (status === 429) res.end(JSON.stringify({ error: { code: 429, message: 'Resource exhausted. Please try again later.', status: 'RESOURCE_EXHAUSTED' } }));
      else res.end(JSON.stringify({ error: { code: status, message: `status ${status}`, status: status === 401 ? 'UNAUTHENTICATED' : 'INTERNAL' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function setup(pool: FakePool) {
  const client = createUpstreamClient();
  const config = ConfigSchema.parse({});
  const deps: EngineDeps = { config: () => config, pool, logger: silentLogger(), clock: systemTestClock, client };
  return { deps, client };
}

const spec = (url: string, over: Partial<AttemptSpec> = {}): AttemptSpec => ({
  model: 'gemini-2.5-flash',
  consume: 'full',
  origin: url,
  method: 'POST',
  path: '/v1beta/models/gemini-2.5-flash:generateContent',
  body: Buffer.from('{"gemini":true}'),
  headers: { 'content-type': 'application/json' },
  signal: new ClientAbort(),
  services: ['gemini_api', 'vertex'],
  target: (lease: Lease) =>
    lease.service === 'vertex'
      ? { origin: url, path: `/v1/projects/${lease.projectId}/locations/global/publishers/google/models/gemini-2.5-flash:generateContent`, body: Buffer.from('{"vertex":true}') }
      : { origin: url, path: '/v1beta/models/gemini-2.5-flash:generateContent' },
  ...over,
});

const GEMINI_PATH = '/v1beta/models/gemini-2.5-flash:generateContent';
const vertexPath = (p: string) => `/v1/projects/${p}/locations/global/publishers/google/models/gemini-2.5-flash:generateContent`;

test('exchange: a 429 on the Gemini API lane fails over to the same account\'s Vertex lane, which gets the bearer token and no x-goog-user-project', async () => {
  const up = await recorder({ [GEMINI_PATH]: [429] });
  const pool = new FakePool(systemTestClock);
  pool.add('a', { projectId: 'proj-a', vertex: true });
  const { deps, client } = setup(pool);
  try {
    const state = { lease: null, retries: 0 };
    const opened = await openUpstream(deps, spec(up.url), state);
    assert.equal(opened.kind, 'ok');
    assert.equal(opened.lease.service, 'vertex');
    assert.equal(opened.lease.lane, 'vertex:proj-a');
    assert.equal(state.retries, 1);
    assert.deepEqual(up.seen.map((s) => s.path), [GEMINI_PATH, vertexPath('proj-a')]);
    const [g, v] = up.seen;
    assert.equal(g!.headers['x-goog-user-project'], 'proj-a', 'the Gemini API is told the quota project');
    assert.equal(g!.body, '{"gemini":true}');
    assert.equal(v!.headers.authorization, 'Bearer tok-a-0');
    assert.equal(v!.headers['x-goog-user-project'], undefined, 'Vertex AI takes the project from the URL');
    assert.equal(v!.body, '{"vertex":true}', 'the Vertex body is built for the Vertex lease');
    assert.deepEqual(pool.reports.map((r) => [r.accountId, r.outcome.kind]), [['a', 'rate_limited']]);
    // the acquire after the 429 excluded the account on the Gemini API only
    const second = pool.acquires[1]!;
    assert.deepEqual([...(second.excludeOn?.gemini_api ?? [])], ['a']);
    assert.deepEqual([...(second.exclude ?? [])], []);
  } finally {
    await client.close();
    await up.close();
  }
});

test('exchange: a 429 on one Vertex lane fails over to another Vertex lane', async () => {
  const up = await recorder({ [vertexPath('proj-a')]: [429] });
  const pool = new FakePool(systemTestClock);
  pool.add('a', { projectId: 'proj-a', vertex: true });
  pool.add('b', { projectId: 'proj-b', vertex: true });
  const { deps, client } = setup(pool);
  try {
    const opened = await openUpstream(deps, spec(up.url, { services: ['vertex'] }), { lease: null, retries: 0 });
    assert.equal(opened.lease.lane, 'vertex:proj-b');
    assert.deepEqual(up.seen.map((s) => s.path), [vertexPath('proj-a'), vertexPath('proj-b')]);
  } finally {
    await client.close();
    await up.close();
  }
});

test('exchange: a Vertex 401 refreshes the token and retries on the same Vertex lane; without a fresh token the account is out on every service', async () => {
  const up = await recorder({ [vertexPath('proj-a')]: [401] });
  const pool = new FakePool(systemTestClock);
  pool.add('a', { projectId: 'proj-a', vertex: true });
  const { deps, client } = setup(pool);
  try {
    const opened = await openUpstream(deps, spec(up.url, { services: ['vertex'] }), { lease: null, retries: 0 });
    assert.equal(opened.lease.lane, 'vertex:proj-a');
    assert.equal(pool.refreshes, 1);
    assert.deepEqual(up.seen.map((s) => s.headers.authorization), ['Bearer tok-a-0', 'Bearer tok-a-1']);

    // refresh fails (invalid_grant): the account is excluded everywhere, the other one serves
    up.seen.length = 0;
    pool.accounts[0]!.refreshFails = true;
    pool.add('b', { projectId: 'proj-b' });
    const upAnswers = await recorder({ [vertexPath('proj-a')]: [401] });
    const opened2 = await openUpstream(deps, spec(upAnswers.url, { services: ['vertex', 'gemini_api'] }), { lease: null, retries: 0 });
    assert.equal(opened2.lease.accountId, 'b');
    assert.equal(opened2.lease.service, 'gemini_api');
    assert.deepEqual([...(pool.acquires.at(-1)!.exclude ?? [])], ['a']);
    await upAnswers.close();
  } finally {
    await client.close();
    await up.close();
  }
});

test('exchange: without a target and services, the spec\'s origin, path and body are used on the Gemini API as before', async () => {
  const up = await recorder({});
  const pool = new FakePool(systemTestClock);
  pool.add('a', { projectId: 'proj-a', vertex: true });
  const { deps, client } = setup(pool);
  try {
    const opened = await openUpstream(deps, spec(up.url, { services: undefined, target: undefined }), { lease: null, retries: 0 });
    assert.equal(opened.lease.service, 'gemini_api');
    assert.equal(up.seen[0]!.path, GEMINI_PATH);
    assert.equal(up.seen[0]!.body, '{"gemini":true}');
    assert.deepEqual(pool.acquires[0]!.services, ['gemini_api']);
  } finally {
    await client.close();
    await up.close();
  }
});

test('exchange: a 404 (no such model) on one service tries the other; when both say 404, the first one is the answer', async () => {
  const up = await recorder({ [GEMINI_PATH]: [404, 404], [vertexPath('proj-a')]: [404] });
  const pool = new FakePool(systemTestClock);
  pool.add('a', { projectId: 'proj-a', vertex: true });
  const { deps, client } = setup(pool);
  try {
    // Vertex first: its 404 sends the request to the Gemini API, which has the model
    const opened = await openUpstream(deps, spec(up.url, { services: ['vertex', 'gemini_api'] }), { lease: null, retries: 0 });
    assert.equal(opened.kind, 'client_error');
    assert.equal(opened.status, 404);
    assert.equal(opened.lease.service, 'vertex', 'the Gemini API answered 404 too: the preferred service\'s answer is passed back');
    assert.deepEqual(up.seen.map((s) => s.path), [vertexPath('proj-a'), GEMINI_PATH]);
    up.seen.length = 0;
    const again = await openUpstream(deps, spec(up.url), { lease: null, retries: 0 });
    assert.equal(again.kind, 'ok', 'Gemini API 404, Vertex AI has it');
    assert.equal(again.lease.service, 'vertex');
    assert.deepEqual(up.seen.map((s) => s.path), [GEMINI_PATH, vertexPath('proj-a')]);
    // only the Gemini API asked for: its 404 is passed back as before
    const only = await openUpstream(deps, spec(up.url, { services: ['gemini_api'] }), { lease: null, retries: 0 });
    assert.equal(only.kind, 'ok');
  } finally {
    await client.close();
    await up.close();
  }
});

test('exchange: a 404 on the Gemini API with no Vertex lane anywhere is passed back at once', async () => {
  const up = await recorder({ [GEMINI_PATH]: [404] });
  const pool = new FakePool(systemTestClock);
  pool.add('a', { projectId: 'proj-a' });
  const { deps, client } = setup(pool);
  try {
    const opened = await openUpstream(deps, spec(up.url), { lease: null, retries: 0 });
    assert.equal(opened.kind, 'client_error');
    assert.equal(opened.status, 404);
    assert.equal(up.seen.length, 1);
  } finally {
    await client.close();
    await up.close();
  }
});
