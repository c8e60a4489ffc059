// The OpenAI and Anthropic doors end to end with the official SDKs, unmodified,
// against the Gemini stand-in (which enforces thought signatures and schema rules).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
let openai: OpenAI;
let anthropic: Anthropic;
before(async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  openai = new OpenAI({ apiKey: 'client-key', baseURL: `${h.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'client-key', baseURL: h.url, maxRetries: 0 });
});
after(() => h.close());

/** A JSON Schema as real clients send it (keywords Gemini's Schema lacks included). */
const weatherSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  properties: {
    city: { type: 'string', description: 'City name' },
    unit: { type: 'string', enum: ['c', 'f'], default: 'c' },
  },
  required: ['city'],
};

test('OpenAI: chat completion, aliases, usage', async () => {
  h.upstream.script({ parts: [{ text: 'Hello from Gemini' }], usage: { promptTokenCount: 11, candidatesTokenCount: 4 } });
  const r = await openai.chat.completions.create({
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ],
  });
  assert.equal(r.choices[0]!.message.content, 'Hello from Gemini');
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  assert.equal(r.model, 'gpt-4o');
  assert.equal(r.usage?.prompt_tokens, 11);
  assert.equal(h.upstream.requests.at(-1)!.model, 'gemini-2.5-flash');
  const entry = h.requestLog.query({ protocol: 'openai', limit: 1 })[0]!;
  assert.equal(entry.model_requested, 'gpt-4o');
  assert.equal(entry.model_used, 'gemini-2.5-flash');
  assert.equal(entry.tokens_in, 11);
});

test('OpenAI: streaming with include_usage', async () => {
  h.upstream.script({ parts: [{ text: 'streamed answer in pieces' }], chunkChars: 5 });
  const stream = await openai.chat.completions.create({
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: 'stream please' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage: unknown = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'streamed answer in pieces');
  assert.ok(usage);
});

test('OpenAI: multi-turn tool use (thought signature carried by the gateway)', async () => {
  h.upstream.script(
    { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
    { parts: [{ text: 'It is 21 degrees in Paris.' }] },
  );
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather', parameters: weatherSchema } }];
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await openai.chat.completions.create({ model: 'gpt-4.1', messages, tools });
  const call = first.choices[0]!.message.tool_calls?.[0];
  assert.ok(call && call.type === 'function');
  assert.equal(first.choices[0]!.finish_reason, 'tool_calls');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' });
  const second = await openai.chat.completions.create({ model: 'gpt-4.1', messages, tools });
  assert.equal(second.choices[0]!.message.content, 'It is 21 degrees in Paris.');
  const sent = h.upstream.requests.at(-1)!.body as any;
  const modelTurn = sent.contents.find((c: any) => c.role === 'model');
  assert.ok(h.upstream.issuedSignatures.has(modelTurn.parts[0].thoughtSignature));
});

test('OpenAI: an upstream 400 comes back in the OpenAI error shape', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (e: any) => {
    assert.equal(e.status, 404);
    assert.ok(e.error?.message);
    return true;
  });
});

test('Anthropic: message, streaming, count_tokens', async () => {
  h.upstream.script({ parts: [{ text: 'Bonjour' }], usage: { promptTokenCount: 9, candidatesTokenCount: 2 } });
  const m = await anthropic.messages.create({
    model: 'claude-sonnet-4-6',
    max_tokens: 256,
    system: 'You translate.',
    messages: [{ role: 'user', content: 'Hello in French' }],
  });
  assert.equal(m.content[0]!.type, 'text');
  assert.equal((m.content[0] as Anthropic.TextBlock).text, 'Bonjour');
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.input_tokens, 9);

  h.upstream.script({ parts: [{ text: 'a streamed reply' }], chunkChars: 4 });
  const stream = anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'go' }] });
  let text = '';
  stream.on('text', (t) => (text += t));
  const final = await stream.finalMessage();
  assert.equal(text, 'a streamed reply');
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(h.upstream.requests.at(-1)!.model, 'gemini-2.5-flash-lite');

  const count = await anthropic.messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'count these tokens please' }] });
  assert.ok(count.input_tokens > 0);
  assert.equal(h.upstream.requests.at(-1)!.action, 'countTokens');
});

test('Anthropic: multi-turn tool use with thinking', async () => {
  h.upstream.script(
    {
      parts: [
        { text: 'I should look up the weather.', thought: true },
        { functionCall: { name: 'get_weather', args: { city: 'Oslo' } } },
      ],
    },
    { parts: [{ text: 'Considering the tool result.', thought: true }, { text: 'Oslo: -3 °C.' }] },
  );
  const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather', input_schema: weatherSchema as Anthropic.Tool.InputSchema }];
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Oslo?' }];
  const thinking = { type: 'enabled' as const, budget_tokens: 1024 };
  const first = await anthropic.messages.create({ model: 'claude-opus-4-1', max_tokens: 2048, thinking, tools, messages });
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock;
  assert.deepEqual(use.input, { city: 'Oslo' });
  assert.ok(first.content.some((b) => b.type === 'thinking'));
  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '-3 °C' }] });
  const second = await anthropic.messages.create({ model: 'claude-opus-4-1', max_tokens: 2048, thinking, tools, messages });
  const text = second.content.find((b) => b.type === 'text') as Anthropic.TextBlock;
  assert.equal(text.text, 'Oslo: -3 °C.');
  const sent = h.upstream.requests.at(-1)!.body as any;
  const call = sent.contents.flatMap((c: any) => c.parts).find((p: any) => p.functionCall);
  assert.ok(h.upstream.issuedSignatures.has(call.thoughtSignature));
});

test('Anthropic: errors come back in the Anthropic shape', async () => {
  await assert.rejects(anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [] }), (e: any) => {
    assert.equal(e.status, 400);
    assert.equal(e.error?.type, 'error');
    assert.equal(e.error?.error?.type, 'invalid_request_error');
    return true;
  });
});
