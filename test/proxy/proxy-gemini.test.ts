// The Gemini-native door end to end with the official @google/genai SDK, unmodified.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
let ai: GoogleGenAI;
before(async () => {
  h = await startProxy({
    accounts: ['a', 'b'],
    config: { model_aliases: { 'my-fast-*': 'gemini-2.5-flash-lite', 'claude-*': 'gemini-2.5-flash' } },
  });
  h.fake!.accounts[1]!.projectId = 'proj-b';
  h.upstream.addToken(h.fake!.accounts[1]!.token, { project: 'proj-b' });
  ai = new GoogleGenAI({ apiKey: 'client-key-never-forwarded', httpOptions: { baseUrl: h.url } });
});
after(() => h.close());

test('generateContent through the gateway: pool token used, client key dropped, usage reported', async () => {
  h.upstream.script({ parts: [{ text: 'Bonjour!' }], usage: { promptTokenCount: 7, candidatesTokenCount: 3 } });
  const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Say hello in French' });
  assert.equal(r.text, 'Bonjour!');
  assert.equal(r.usageMetadata?.promptTokenCount, 7);
  const seen = h.upstream.requests.at(-1)!;
  assert.equal(seen.action, 'generateContent');
  assert.equal(seen.sentApiKey, false);
  assert.match(seen.token!, /^tok-[ab]-0$/);
  const ok = h.fake!.outcomes('ok').at(-1)!;
  assert.deepEqual(ok.outcome, { kind: 'ok', tokensIn: 7, tokensOut: 3 });
  const entry = h.requestLog.query({ limit: 1 })[0]!;
  assert.equal(entry.protocol, 'gemini');
  assert.equal(entry.status, 200);
  assert.equal(entry.tokens_in, 7);
  assert.equal(entry.model_used, 'gemini-2.5-flash');
  assert.ok(!JSON.stringify(entry).includes('tok-'), 'no token in the request log');
});

test('x-goog-user-project is sent for an account with a project', async () => {
  for (let i = 0; i < 2; i++) await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' });
  const last2 = h.upstream.requests.slice(-2);
  const b = last2.find((r) => r.token === h.fake!.accounts[1]!.token)!;
  const a = last2.find((r) => r.token !== h.fake!.accounts[1]!.token)!;
  assert.equal(b.userProject, 'proj-b');
  assert.equal(a.userProject, null);
  assert.ok(last2.every((r) => r.status === 200));
});

test('model aliases apply to the URL model; the body passes through byte for byte', async () => {
  const r = await ai.models.generateContent({
    model: 'my-fast-model',
    contents: [{ role: 'user', parts: [{ text: 'ping' }] }],
    config: { temperature: 0.25, maxOutputTokens: 64 },
  });
  assert.equal(r.text, 'Echo: ping');
  const seen = h.upstream.requests.at(-1)!;
  assert.equal(seen.model, 'gemini-2.5-flash-lite');
  assert.deepEqual((seen.body as any).generationConfig, { temperature: 0.25, maxOutputTokens: 64 });
  assert.equal(h.requestLog.query({ limit: 1 })[0]!.model_requested, 'my-fast-model');
});

test('streaming: chunks arrive in order and the first one before the upstream finished', async () => {
  let release!: () => void;
  const resume = new Promise<void>((r) => (release = r));
  h.upstream.script({ parts: [{ text: 'one two three four five six' }], chunkChars: 4, pauseAfterChunks: 1, resume });
  const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'count' });
  const texts: string[] = [];
  for await (const chunk of stream) {
    texts.push(chunk.text ?? '');
    if (texts.length === 1) {
      // The upstream is holding the rest until we release it: the first chunk was forwarded as it arrived.
      assert.equal(texts[0], 'one ');
      release();
    }
  }
  assert.equal(texts.join(''), 'one two three four five six');
  assert.equal(h.upstream.requests.at(-1)!.query.alt, 'sse');
  const entry = h.requestLog.query({ limit: 1 })[0]!;
  assert.equal(entry.status, 200);
  assert.ok(entry.tokens_out > 0);
});

test('countTokens and model listing (upstream models plus aliases)', async () => {
  const c = await ai.models.countTokens({ model: 'claude-sonnet-4', contents: 'how many tokens is this?' });
  assert.ok((c.totalTokens ?? 0) > 0);
  assert.equal(h.upstream.requests.at(-1)!.model, 'gemini-2.5-flash');
  // The whole-request form, in the snake_case spelling Google also accepts: the alias is resolved inside too.
  const snake = await fetch(`${h.url}/v1beta/models/claude-sonnet-4:countTokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ generate_content_request: { model: 'models/claude-sonnet-4', contents: [{ role: 'user', parts: [{ text: 'count me' }] }] } }),
  });
  assert.equal(snake.status, 200, await snake.clone().text());
  assert.equal((h.upstream.requests.at(-1)!.body as { generate_content_request: { model: string } }).generate_content_request.model, 'models/gemini-2.5-flash');

  const names: string[] = [];
  for await (const m of await ai.models.list()) names.push(m.name ?? '');
  assert.ok(names.includes('models/gemini-2.5-pro'));
  assert.ok(names.includes('models/my-fast-*'));

  const res = await fetch(`${h.url}/v1/models`);
  const body = (await res.json()) as { object: string; data: { id: string; owned_by: string }[] };
  assert.equal(body.object, 'list');
  assert.ok(body.data.some((m) => m.id === 'gemini-2.5-flash' && m.owned_by === 'google'));
  assert.ok(body.data.some((m) => m.id === 'claude-*' && m.owned_by === 'grantpool-alias'));
});

test('upstream 4xx come back as Google errors, and the same request on /v1/ works', async () => {
  await assert.rejects(ai.models.generateContent({ model: 'no-such-model', contents: 'x' }), (e: any) => {
    assert.equal(e.status, 404);
    assert.match(e.message, /not found/);
    return true;
  });
  const v1 = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: h.url, apiVersion: 'v1' } });
  const r = await v1.models.generateContent({ model: 'gemini-2.5-flash', contents: 'over v1' });
  assert.equal(r.text, 'Echo: over v1');
  assert.match(h.upstream.requests.at(-1)!.path, /^\/v1\/models\//);
});

test('a client that disconnects aborts the upstream request', async () => {
  const resume = new Promise<void>(() => {});
  h.upstream.script({ parts: [{ text: 'a long answer that never finishes' }], chunkChars: 4, pauseAfterChunks: 1, resume });
  const ac = new AbortController();
  const res = await fetch(`${h.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
    method: 'POST',
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'go' }] }] }),
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  assert.equal(h.upstream.inFlight, 1);
  ac.abort();
  for (let i = 0; i < 100 && h.upstream.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(h.upstream.inFlight, 0, 'upstream request closed');
});

test('a client that gives up on a non-streaming answer aborts the upstream request', async () => {
  h.upstream.setDelay(10_000);
  try {
    const ac = new AbortController();
    const answer = ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'slow', config: { abortSignal: ac.signal } });
    for (let i = 0; i < 100 && h.upstream.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.upstream.inFlight, 1);
    ac.abort();
    await assert.rejects(answer);
    for (let i = 0; i < 100 && h.upstream.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.upstream.inFlight, 0, 'upstream request closed long before its 10 s answer');
    for (let i = 0; i < 100 && h.requestLog.query({ limit: 1 })[0]?.status !== 499; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.requestLog.query({ limit: 1 })[0]!.status, 499, 'recorded as a client disconnect');
  } finally {
    h.upstream.setDelay(0);
  }
});

test('query parameters the gateway does not translate are ignored, not forwarded', async () => {
  const res = await fetch(`${h.url}/v1beta/models/gemini-2.5-flash:generateContent?beta=true&key=client-key&prettyPrint=false`, {
    method: 'POST',
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'q' }] }] }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(h.upstream.requests.at(-1)!.query, { prettyPrint: 'false' });
});

test('embeddings pass through', async () => {
  const r = await ai.models.embedContent({ model: 'text-embedding-004', contents: ['first text', 'second text'] });
  assert.equal(r.embeddings?.length, 2);
  assert.equal(r.embeddings?.[0]?.values?.length, 8);
  assert.match(h.upstream.requests.at(-1)!.action, /embedContent|batchEmbedContents/);
});
