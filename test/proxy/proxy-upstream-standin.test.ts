// The Gemini API stand-in behaves like the real API where a gateway can get it wrong.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startGeminiUpstream, type GeminiUpstream } from '../support/gemini-upstream.ts';

let up: GeminiUpstream;
before(async () => {
  up = await startGeminiUpstream({ tokens: ['tok-a', 'tok-b'] });
  up.addToken('tok-p', { project: 'proj-1' });
});
after(() => up.close());

async function call(path: string, body?: unknown, token: string | null = 'tok-a', headers: Record<string, string> = {}) {
  const res = await fetch(up.url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json, headers: res.headers };
}

const hello = { contents: [{ role: 'user', parts: [{ text: 'hello' }] }] };

test('lists models on v1beta and v1, and refuses missing or unknown tokens with Google error bodies', async () => {
  const list = await call('/v1beta/models');
  assert.equal(list.status, 200);
  assert.ok(list.json.models.some((m: any) => m.name === 'models/gemini-2.5-flash'));
  assert.equal((await call('/v1/models')).status, 200);

  const missing = await call('/v1beta/models', undefined, null);
  assert.equal(missing.status, 401);
  assert.equal(missing.json.error.status, 'UNAUTHENTICATED');
  const bad = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello, 'nope');
  assert.equal(bad.status, 401);
  assert.match(bad.json.error.message, /^Request had invalid authentication credentials/);
  up.revokeToken('tok-b');
  assert.equal((await call('/v1beta/models', undefined, 'tok-b')).status, 401);
});

test('checks x-goog-user-project for a token bound to a project', async () => {
  assert.equal((await call('/v1beta/models/gemini-2.5-flash:generateContent', hello, 'tok-p')).status, 403);
  const ok = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello, 'tok-p', { 'x-goog-user-project': 'proj-1' });
  assert.equal(ok.status, 200);
  assert.equal(up.requests.at(-1)!.userProject, 'proj-1');
});

test('generateContent, SSE streaming and countTokens answer in the wire format', async () => {
  up.script({ parts: [{ text: 'Hi there, this is a long enough answer to be split.' }], chunkChars: 10 });
  const r = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  assert.equal(r.status, 200);
  assert.equal(r.json.candidates[0].content.parts[0].text, 'Hi there, this is a long enough answer to be split.');
  assert.equal(r.json.candidates[0].finishReason, 'STOP');
  assert.ok(r.json.usageMetadata.promptTokenCount > 0);

  up.script({ parts: [{ text: 'abcdefghijklmnopqrstuvwxyz' }], chunkChars: 10 });
  const s = await call('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', hello);
  assert.equal(s.headers.get('content-type'), 'text/event-stream');
  const events = s.text.split('\r\n\r\n').filter(Boolean).map((e) => JSON.parse(e.replace(/^data: /, '')));
  assert.equal(events.length, 3);
  assert.equal(events.map((e) => e.candidates[0].content.parts[0].text).join(''), 'abcdefghijklmnopqrstuvwxyz');
  assert.equal(events[2].candidates[0].finishReason, 'STOP');

  const c = await call('/v1beta/models/gemini-2.5-flash:countTokens', hello);
  assert.equal(c.status, 200);
  assert.equal(typeof c.json.totalTokens, 'number');
});

test('unknown models, fields and bad schemas are refused like the real API', async () => {
  const nf = await call('/v1beta/models/gpt-4o:generateContent', hello);
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error.status, 'NOT_FOUND');
  const unknown = await call('/v1beta/models/gemini-2.5-flash:generateContent', { ...hello, temperature: 1 });
  assert.equal(unknown.status, 400);
  assert.match(unknown.json.error.message, /Unknown name "temperature"/);
  const schema = await call('/v1beta/models/gemini-2.5-flash:generateContent', {
    ...hello,
    tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', additionalProperties: false, properties: {} } }] }],
  });
  assert.equal(schema.status, 400);
  assert.match(schema.json.error.message, /Unknown name "additionalProperties" at 'tools\[0\].function_declarations\[0\].parameters'/);
  const empty = await call('/v1beta/models/gemini-2.5-flash:generateContent', { contents: [] });
  assert.equal(empty.status, 400);
  const role = await call('/v1beta/models/gemini-2.5-flash:generateContent', { contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] });
  assert.match(role.json.error.message, /valid role/);
  const json = await call('/v1beta/models/gemini-2.5-flash:generateContent', '{nope');
  assert.equal(json.status, 400);
  const param = await call('/v1beta/models/gemini-2.5-flash:generateContent?beta=true', hello);
  assert.equal(param.status, 400);
  assert.match(param.json.error.message, /Unknown name "beta": Cannot bind query parameter/);
});

test('thought signatures: a function call it issued must come back with its signature', async () => {
  up.script({ parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }], finishReason: 'STOP' });
  const first = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  const part = first.json.candidates[0].content.parts[0];
  assert.ok(part.thoughtSignature);
  const history = (p: unknown) => ({
    contents: [
      { role: 'user', parts: [{ text: 'weather?' }] },
      { role: 'model', parts: [p] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 20 } } }] },
    ],
  });
  const without = await call('/v1beta/models/gemini-2.5-flash:generateContent', history({ functionCall: part.functionCall }));
  assert.equal(without.status, 400);
  assert.equal(without.json.error.status, 'INVALID_ARGUMENT');
  assert.match(without.json.error.message, /missing a thought_signature.*default_api:get_weather/);
  const forged = await call('/v1beta/models/gemini-2.5-flash:generateContent', history({ ...part, thoughtSignature: 'Zm9yZ2Vk' }));
  assert.equal(forged.status, 400);
  const withSig = await call('/v1beta/models/gemini-2.5-flash:generateContent', history(part));
  assert.equal(withSig.status, 200);
  // Response count must match call count.
  const mismatch = await call('/v1beta/models/gemini-2.5-flash:generateContent', {
    contents: [
      { role: 'user', parts: [{ text: 'weather?' }] },
      { role: 'model', parts: [part] },
      { role: 'user', parts: [{ text: 'no response' }] },
    ],
  });
  assert.equal(mismatch.status, 400);
});

test('thoughts are returned only with includeThoughts', async () => {
  const answer = { parts: [{ text: 'thinking...', thought: true }, { text: 'answer' }] };
  up.script(answer, answer);
  const plain = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  assert.deepEqual(plain.json.candidates[0].content.parts.map((p: any) => p.text), ['answer']);
  const withThoughts = await call('/v1beta/models/gemini-2.5-flash:generateContent', {
    ...hello,
    generationConfig: { thinkingConfig: { includeThoughts: true } },
  });
  assert.equal(withThoughts.json.candidates[0].content.parts[0].thought, true);
  assert.ok(withThoughts.json.usageMetadata.thoughtsTokenCount > 0);
});

test('programmed failures use Google error bodies', async () => {
  up.failNext('tok-a', 'rate_limited');
  const rl = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  assert.equal(rl.status, 429);
  assert.equal(rl.json.error.status, 'RESOURCE_EXHAUSTED');
  assert.ok(rl.json.error.details.some((d: any) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo' && d.retryDelay === '37s'));

  up.failNext('*', 'daily_quota');
  const dq = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  const qf = dq.json.error.details.find((d: any) => d['@type'] === 'type.googleapis.com/google.rpc.QuotaFailure');
  assert.equal(qf.violations[0].quotaId, 'GenerateRequestsPerDayPerProjectPerModel');

  up.failNext('tok-a', 'service_disabled', { project: '42' });
  const sd = await call('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  assert.equal(sd.status, 403);
  const info = sd.json.error.details.find((d: any) => d.reason === 'SERVICE_DISABLED');
  assert.match(info.metadata.activationUrl, /project=42/);

  up.failNext('tok-a', 'unavailable');
  assert.equal((await call('/v1beta/models/gemini-2.5-flash:generateContent', hello)).status, 503);
  up.failNext('tok-a', 'reset');
  await assert.rejects(call('/v1beta/models/gemini-2.5-flash:generateContent', hello));
  assert.equal((await call('/v1beta/models/gemini-2.5-flash:generateContent', hello)).status, 200);

  up.script({ parts: [{ text: 'x'.repeat(100) }], chunkChars: 10 });
  up.failNext('tok-a', 'reset_mid_stream', { afterChunks: 2 });
  const res = await fetch(up.url + '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', {
    method: 'POST',
    headers: { authorization: 'Bearer tok-a', 'content-type': 'application/json' },
    body: JSON.stringify(hello),
  });
  assert.equal(res.status, 200);
  await assert.rejects(res.text());
});
