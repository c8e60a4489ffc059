import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { createOpenAIDoor } from '../../src/proxy/openai/door.ts';
import { createThoughtSignatureCache } from '../../src/proxy/thought-signatures.ts';
import type { ResponseInfo } from '../../src/proxy/door.ts';
import { findRequestSchemaViolations } from '../support/gemini-schema-rules.ts';
import { testBadRequests } from '../support/golden-bad-requests.ts';

const golden = JSON.parse(readFileSync(new URL('./golden/openai.json', import.meta.url), 'utf8'));
const info = (options: Record<string, unknown> = {}): ResponseInfo => ({ requestedModel: 'gpt-4o', id: 'chatcmpl-1', created: 1700000000, options });

/** Replaces generated tool call ids by <call_N> in order of appearance. */
function normalizeIds(value: unknown): unknown {
  const seen = new Map<string, string>();
  const text = JSON.stringify(value).replace(/call_[A-Za-z0-9]{24}/g, (id) => {
    if (!seen.has(id)) seen.set(id, `<call_${seen.size}>`);
    return seen.get(id)!;
  });
  return JSON.parse(text);
}

function sseEvents(text: string): unknown[] {
  assert.ok(text.endsWith('\n\n'), 'SSE text ends with a blank line');
  return text.split('\n\n').filter(Boolean).map((block) => {
    assert.match(block, /^data: /);
    const data = block.slice(6);
    return data === '[DONE]' ? data : JSON.parse(data);
  });
}

for (const c of golden.requests) {
  test(`request: ${c.name}`, () => {
    const door = createOpenAIDoor({ signatures: createThoughtSignatureCache() });
    const parsed = door.parseRequest(c.request);
    assert.deepEqual(parsed.gemini, c.gemini);
    assert.equal(parsed.requestedModel, c.request.model);
    assert.equal(parsed.stream, c.stream);
    assert.equal(parsed.sessionKey, c.sessionKey);
    if (c.responseOptions) assert.deepEqual(parsed.responseOptions, c.responseOptions);
    assert.deepEqual(findRequestSchemaViolations(parsed.gemini), []);
  });
}

testBadRequests(golden.badRequests, () => createOpenAIDoor({ signatures: createThoughtSignatureCache() }));

for (const c of golden.responses) {
  test(`response: ${c.name}`, () => {
    const door = createOpenAIDoor({ signatures: createThoughtSignatureCache() });
    assert.deepEqual(normalizeIds(door.toResponse(c.gemini, info())), c.openai);
  });
}

for (const c of golden.streams) {
  test(`stream: ${c.name}`, () => {
    const door = createOpenAIDoor({ signatures: createThoughtSignatureCache() });
    const t = door.streamTranslator(info(c.options));
    const text = t.start() + c.gemini.map((g: Record<string, unknown>) => t.chunk(g)).join('') + t.end();
    assert.deepEqual(normalizeIds(sseEvents(text)), c.sse);
  });
}

test('remote image URLs become fileData parts when allowed', () => {
  const door = createOpenAIDoor({ signatures: createThoughtSignatureCache(), allowRemoteImages: true });
  const parsed = door.parseRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] });
  assert.deepEqual((parsed.gemini.contents as any)[0].parts, [{ fileData: { mimeType: 'image/png', fileUri: 'https://example.com/cat.png' } }]);
});

test('tool_choice and response_format variants', () => {
  const door = createOpenAIDoor({ signatures: createThoughtSignatureCache() });
  const base = { model: 'm', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f' } }] };
  const mode = (tool_choice: unknown) => (door.parseRequest({ ...base, tool_choice }).gemini.toolConfig as any)?.functionCallingConfig;
  assert.deepEqual(mode('none'), { mode: 'NONE' });
  assert.deepEqual(mode('auto'), { mode: 'AUTO' });
  assert.deepEqual(mode('required'), { mode: 'ANY' });
  assert.deepEqual((door.parseRequest({ ...base, response_format: { type: 'json_object' } }).gemini.generationConfig as any), { responseMimeType: 'application/json' });
  assert.deepEqual((door.parseRequest(base).gemini.tools as any)[0].functionDeclarations, [{ name: 'f' }]);
});

test('multi-turn tool use: the thought signature comes back on the function call', () => {
  const signatures = createThoughtSignatureCache();
  const door = createOpenAIDoor({ signatures });
  // Turn 1: Gemini answers with a signed function call.
  const answer = door.toResponse(
    { candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'lookup', args: { q: 'x' } }, thoughtSignature: 'SIG-TURN-1' }] }, finishReason: 'STOP' }] },
    info(),
  ) as any;
  const call = answer.choices[0].message.tool_calls[0];
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  // Turn 2: the client sends the history back without any signature.
  const parsed = door.parseRequest({
    model: 'm',
    messages: [
      { role: 'user', content: 'look up x' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '42' },
    ],
  });
  assert.deepEqual((parsed.gemini.contents as any)[1], { role: 'model', parts: [{ functionCall: { name: 'lookup', args: { q: 'x' } }, thoughtSignature: 'SIG-TURN-1' }] });
  assert.deepEqual((parsed.gemini.contents as any)[2].parts[0], { functionResponse: { name: 'lookup', response: { output: '42' } } });
  // Same through a stream.
  const t = door.streamTranslator(info());
  const sse = t.chunk({ candidates: [{ content: { parts: [{ functionCall: { name: 'lookup', args: {} }, thoughtSignature: 'SIG-STREAM' }] } }] });
  const streamedId = (sseEvents(sse)[0] as any).choices[0].delta.tool_calls[0].id;
  assert.equal(signatures.recall(streamedId), 'SIG-STREAM');
});

test('the OpenAI SDK reads the translated stream and surfaces a mid-stream error', async () => {
  const door = createOpenAIDoor({ signatures: createThoughtSignatureCache() });
  const t = door.streamTranslator(info({ includeUsage: true }));
  const good = t.start() + t.chunk({ candidates: [{ content: { parts: [{ text: 'Hi' }] }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 1, totalTokenCount: 4 } }) + t.end();
  const client = (body: string) => new OpenAI({ apiKey: 'k', baseURL: 'http://gateway.invalid/v1', fetch: async () => new Response(body, { headers: { 'content-type': 'text/event-stream' } }) });
  const chunks: any[] = [];
  for await (const c of await client(good).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } })) chunks.push(c);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hi');
  assert.equal(chunks.at(-1).usage.total_tokens, 4);

  const t2 = door.streamTranslator(info());
  const bad = t2.chunk({ candidates: [{ content: { parts: [{ text: 'Par' }] } }] }) + t2.error(502, 'upstream connection reset');
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const c of await client(bad).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true })) seen.push(c.choices[0]?.delta?.content ?? '');
  }, /upstream connection reset/);
  assert.deepEqual(seen, ['Par']);
});

test('error bodies have the OpenAI shape', () => {
  const door = createOpenAIDoor({ signatures: createThoughtSignatureCache() });
  assert.deepEqual(door.errorBody(429, 'slow down', 'rate_limited'), { error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limited' } });
  assert.deepEqual(door.errorBody(400, 'bad'), { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } });
});
