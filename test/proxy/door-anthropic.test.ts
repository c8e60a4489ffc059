import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { createAnthropicDoor } from '../../src/proxy/anthropic/door.ts';
import { setCountTokensModel, type ResponseInfo } from '../../src/proxy/door.ts';
import { createThoughtSignatureCache, decodeThinkingSignature } from '../../src/proxy/thought-signatures.ts';
import { findRequestSchemaViolations } from '../support/gemini-schema-rules.ts';
import { testBadRequests } from '../support/golden-bad-requests.ts';

const golden = JSON.parse(readFileSync(new URL('./golden/anthropic.json', import.meta.url), 'utf8'));
const claudeCodeTools = JSON.parse(readFileSync(new URL('./golden/claude-code-tools.json', import.meta.url), 'utf8'));
const info = (options: Record<string, unknown> = {}): ResponseInfo => ({ requestedModel: 'claude-sonnet-4-5', id: 'msg_1', created: 1700000000, options });
const newDoor = () => createAnthropicDoor({ signatures: createThoughtSignatureCache() });

/** Replaces generated ids by <toolu_N> and our thinking signatures by <sig:json>. */
function normalize(value: unknown): unknown {
  const seen = new Map<string, string>();
  const text = JSON.stringify(value)
    .replace(/toolu_[A-Za-z0-9]{24}/g, (id) => {
      if (!seen.has(id)) seen.set(id, `<toolu_${seen.size}>`);
      return seen.get(id)!;
    })
    .replace(/"(gp1\.[A-Za-z0-9_-]+)"/g, (_m, sig) => JSON.stringify(`<sig:${JSON.stringify({ ...(decodeThinkingSignature(sig)!.thought ? { t: decodeThinkingSignature(sig)!.thought } : {}), ...(decodeThinkingSignature(sig)!.next ? { n: decodeThinkingSignature(sig)!.next } : {}) })}>`));
  return JSON.parse(text);
}

function sseEvents(text: string): Array<[string, unknown]> {
  return text.split('\n\n').filter(Boolean).map((block) => {
    const m = /^event: (\S+)\ndata: (.*)$/s.exec(block);
    assert.ok(m, `SSE block in Anthropic format: ${block}`);
    return [m[1]!, JSON.parse(m[2]!)];
  });
}

for (const c of golden.requests) {
  test(`request: ${c.name}`, () => {
    const parsed = newDoor().parseRequest(c.request);
    assert.deepEqual(parsed.gemini, c.gemini);
    assert.equal(parsed.requestedModel, c.request.model);
    assert.equal(parsed.stream, c.stream);
    assert.equal(parsed.sessionKey, c.sessionKey);
    assert.deepEqual(findRequestSchemaViolations(parsed.gemini), []);
  });
}

testBadRequests(golden.badRequests, newDoor);

for (const c of golden.responses) {
  test(`response: ${c.name}`, () => {
    const out = normalize(newDoor().toResponse(c.gemini, info()));
    const expected = JSON.parse(JSON.stringify(c.anthropic).replace('"gp1.e30"', '"<sig:{}>"'));
    assert.deepEqual(out, expected);
  });
}

for (const c of golden.streams) {
  test(`stream: ${c.name}`, () => {
    const t = newDoor().streamTranslator(info());
    const text = t.start() + c.gemini.map((g: Record<string, unknown>) => t.chunk(g)).join('') + t.end();
    assert.deepEqual(normalize(sseEvents(text)), c.events);
  });
}

test('Claude Code request with 24 tools translates into a request the Gemini API accepts', () => {
  const parsed = newDoor().parseRequest({
    model: 'claude-sonnet-4-5', max_tokens: 32000, stream: true,
    system: [{ type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." }],
    tools: claudeCodeTools,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'list files', cache_control: { type: 'ephemeral' } }] }],
  });
  assert.equal((parsed.gemini.tools as any)[0].functionDeclarations.length, 24);
  assert.deepEqual(findRequestSchemaViolations(parsed.gemini), []);
});

test('multi-turn tool use with thinking: signatures return through the cache and the thinking block', () => {
  const signatures = createThoughtSignatureCache();
  const door = createAnthropicDoor({ signatures });
  const t = door.streamTranslator(info());
  const text =
    t.chunk({ candidates: [{ content: { parts: [{ text: 'I should list.', thought: true }] } }] }) +
    t.chunk({ candidates: [{ content: { parts: [{ functionCall: { name: 'LS', args: { path: '/' } }, thoughtSignature: 'SIG-FC-1' }, { functionCall: { name: 'Read', args: { file_path: '/a' } } }] }, finishReason: 'STOP' }] }) +
    t.end();
  // Rebuild the assistant message the way the Anthropic SDK accumulates it.
  const blocks: any[] = [];
  for (const [event, data] of sseEvents(text) as Array<[string, any]>) {
    if (event === 'content_block_start') blocks[data.index] = { ...data.content_block };
    if (event === 'content_block_delta') {
      const b = blocks[data.index];
      if (data.delta.type === 'thinking_delta') b.thinking += data.delta.thinking;
      if (data.delta.type === 'signature_delta') b.signature = data.delta.signature;
      if (data.delta.type === 'input_json_delta') b.input = JSON.parse(data.delta.partial_json);
    }
  }
  assert.deepEqual(blocks.map((b) => b.type), ['thinking', 'tool_use', 'tool_use']);
  const [thinking, ls, read] = blocks;
  const history = [
    { role: 'user', content: 'list / and read /a' },
    { role: 'assistant', content: blocks },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: ls.id, content: 'a' }, { type: 'tool_result', tool_use_id: read.id, content: 'hello' }] },
  ];
  const expectedModelTurn = {
    role: 'model',
    parts: [
      { text: 'I should list.', thought: true },
      { functionCall: { name: 'LS', args: { path: '/' } }, thoughtSignature: 'SIG-FC-1' },
      { functionCall: { name: 'Read', args: { file_path: '/a' } } },
    ],
  };
  // With the cache.
  const turn2 = door.parseRequest({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: history, thinking: { type: 'enabled', budget_tokens: 1024 } });
  assert.deepEqual((turn2.gemini.contents as any)[1], expectedModelTurn);
  assert.deepEqual((turn2.gemini.contents as any)[2].parts.map((p: any) => p.functionResponse.name), ['LS', 'Read']);
  // After a restart (empty cache): the thinking block's signature still carries it.
  const fresh = createAnthropicDoor({ signatures: createThoughtSignatureCache() });
  const again = fresh.parseRequest({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: history });
  assert.deepEqual((again.gemini.contents as any)[1], expectedModelTurn);
  assert.equal(decodeThinkingSignature(thinking.signature)?.next, 'SIG-FC-1');
});

test('a thinking block signed by someone else is dropped, not sent to Gemini', () => {
  const parsed = newDoor().parseRequest({ model: 'c', max_tokens: 10, messages: [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 'EqQBCkgIARABGAIiQL...' }, { type: 'redacted_thinking', data: 'xyz' }, { type: 'text', text: 'Hello' }] },
    { role: 'user', content: 'again' },
  ] });
  assert.deepEqual((parsed.gemini.contents as any)[1], { role: 'model', parts: [{ text: 'Hello' }] });
});

test('count_tokens: Anthropic body to Gemini countTokens and back', () => {
  const door = newDoor();
  const parsed = door.countTokens!.parseRequest({ model: 'claude-sonnet-4-5', system: 'sys', messages: [{ role: 'user', content: 'Hello' }], tools: [{ name: 'f', input_schema: { type: 'object', properties: { a: { type: 'string' } } } }] });
  assert.equal(parsed.requestedModel, 'claude-sonnet-4-5');
  assert.deepEqual(setCountTokensModel(parsed.gemini, 'gemini-2.5-flash'), {
    generateContentRequest: {
      model: 'models/gemini-2.5-flash',
      contents: [{ role: 'user', parts: [{ text: 'Hello' }] }],
      systemInstruction: { parts: [{ text: 'sys' }] },
      tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'OBJECT', properties: { a: { type: 'STRING' } } } }] }],
    },
  });
  assert.deepEqual(door.countTokens!.toResponse({ totalTokens: 31 }), { input_tokens: 31 });
});

test('the Anthropic SDK accumulates the translated stream and surfaces a mid-stream error', async () => {
  const door = newDoor();
  const client = (body: string) => new Anthropic({ apiKey: 'k', baseURL: 'http://gateway.invalid', fetch: async () => new Response(body, { headers: { 'content-type': 'text/event-stream' } }) });
  const t = door.streamTranslator(info());
  const good = t.start() + t.chunk({ candidates: [{ content: { parts: [{ text: 'Hi ' }] } }] }) + t.chunk({ candidates: [{ content: { parts: [{ text: 'there' }] }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 } }) + t.end();
  const message = await client(good).messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
  assert.deepEqual(message.content, [{ type: 'text', text: 'Hi there' }]);
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.usage.output_tokens, 2);

  const t2 = door.streamTranslator(info());
  const bad = t2.chunk({ candidates: [{ content: { parts: [{ text: 'Par' }] } }] }) + t2.error(529, 'upstream overloaded');
  await assert.rejects(client(bad).messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage(), /upstream overloaded/);
});

test('error bodies have the Anthropic shape', () => {
  assert.deepEqual(newDoor().errorBody(429, 'slow down'), { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
  assert.deepEqual(newDoor().errorBody(400, 'bad'), { type: 'error', error: { type: 'invalid_request_error', message: 'bad' } });
});
