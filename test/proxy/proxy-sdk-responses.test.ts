// POST /v1/responses end to end with the official OpenAI SDK, unmodified,
// against the Gemini stand-in (which enforces thought signatures): plain and
// streamed answers, a tool round trip, structured output, failover, and the
// requests a stateless gateway must refuse.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { ResponseInputItem, ResponseStreamEvent, FunctionTool } from 'openai/resources/responses/responses';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
let openai: OpenAI;
before(async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  openai = new OpenAI({ apiKey: 'client-key', baseURL: `${h.url}/v1`, maxRetries: 0 });
});
after(() => h.close());

const weather: FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  strict: true,
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: ['string', 'null'], enum: ['c', 'f', null] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
};

test('plain answer: output_text, usage, the alias, the request log', async () => {
  h.upstream.script({ parts: [{ text: 'Hello from Gemini' }], usage: { promptTokenCount: 12, candidatesTokenCount: 4 } });
  const r = await openai.responses.create({ model: 'gpt-5', instructions: 'Be brief.', input: 'Hi' });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'completed');
  assert.equal(r.output_text, 'Hello from Gemini');
  assert.equal(r.model, 'gpt-5');
  assert.equal(r.usage?.input_tokens, 12);
  assert.equal(r.usage?.output_tokens, 4);
  assert.equal(r.usage?.total_tokens, 16);
  const sent = h.upstream.requests.at(-1)!;
  assert.equal(sent.model, 'gemini-2.5-flash');
  assert.deepEqual((sent.body as any).systemInstruction, { parts: [{ text: 'Be brief.' }] });
  const entry = h.requestLog.query({ limit: 1 })[0]!;
  assert.equal(entry.route, '/v1/responses');
  assert.equal(entry.protocol, 'openai');
  assert.equal(entry.model_requested, 'gpt-5');
  assert.equal(entry.tokens_in, 12);
});

test('streaming: the event sequence, numbered from 0, with consistent item ids and indexes, ends in response.completed with usage', async () => {
  h.upstream.script({ parts: [{ text: 'streamed answer in pieces' }], chunkChars: 5, usage: { promptTokenCount: 7, candidatesTokenCount: 5 } });
  const stream = await openai.responses.create({ model: 'gemini-2.5-flash', input: [{ role: 'user', content: 'stream please' }], stream: true });
  const events: ResponseStreamEvent[] = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
  const deltas = events.filter((e) => e.type === 'response.output_text.delta');
  assert.ok(deltas.length >= 5, 'text arrives in pieces');
  assert.equal(deltas.map((d) => d.delta).join(''), 'streamed answer in pieces');
  const added = events.find((e) => e.type === 'response.output_item.added')!;
  assert.ok(added.type === 'response.output_item.added' && added.item.type === 'message');
  for (const d of deltas) assert.ok(d.item_id === added.item.id && d.output_index === 0 && d.content_index === 0);
  const completed = events.at(-1)!;
  assert.ok(completed.type === 'response.completed');
  const message = completed.response.output[0]!;
  assert.ok(message.type === 'message' && message.id === added.item.id && message.status === 'completed');
  assert.deepEqual(message.content, [{ type: 'output_text', text: 'streamed answer in pieces', annotations: [], logprobs: [] }]);
  assert.equal(completed.response.usage?.input_tokens, 7);
  assert.equal(completed.response.id, (events[0] as { response: { id: string } }).response.id);
});

test('the SDK stream helper assembles the final response', async () => {
  h.upstream.script({ parts: [{ text: 'assembled by the SDK' }], chunkChars: 3 });
  const stream = openai.responses.stream({ model: 'gpt-4.1', input: 'go' });
  let text = '';
  stream.on('response.output_text.delta', (e) => (text += e.delta));
  const final = await stream.finalResponse();
  assert.equal(text, 'assembled by the SDK');
  assert.equal(final.output_text, 'assembled by the SDK');
});

for (const streaming of [false, true]) {
  test(`tool round trip with function_call_output${streaming ? ' (streamed)' : ''}: the thought signature comes back to Gemini`, async () => {
    h.upstream.script(
      { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris', unit: null } } }] },
      { parts: [{ text: 'It is 21 degrees in Paris.' }] },
    );
    const input: ResponseInputItem[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = streaming
      ? await openai.responses.stream({ model: 'gpt-5', input, tools: [weather] }).finalResponse()
      : await openai.responses.create({ model: 'gpt-5', input, tools: [weather] });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call && call.type === 'function_call', JSON.stringify(first.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris', unit: null });
    assert.match(call.call_id, /^call_/);
    input.push(...(first.output as ResponseInputItem[]), { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c":21}' });
    const second = await openai.responses.create({ model: 'gpt-5', input, tools: [weather] });
    assert.equal(second.output_text, 'It is 21 degrees in Paris.');
    const sent = h.upstream.requests.at(-1)!.body as any;
    const modelTurn = sent.contents.find((c: any) => c.role === 'model');
    assert.ok(h.upstream.issuedSignatures.has(modelTurn.parts[0].thoughtSignature));
    assert.deepEqual(sent.contents.at(-1).parts[0].functionResponse, { name: 'get_weather', response: { output: '{"temp_c":21}' } });
  });
}

test('text.format json_schema: Gemini is asked for JSON following the schema, and the JSON comes back', async () => {
  h.upstream.script({ parts: [{ text: '{"city":"Oslo","temp_c":-3}' }] });
  const schema = { type: 'object', properties: { city: { type: 'string' }, temp_c: { type: 'number' } }, required: ['city', 'temp_c'], additionalProperties: false };
  const r = await openai.responses.create({
    model: 'gpt-5-mini',
    input: 'Weather in Oslo',
    text: { format: { type: 'json_schema', name: 'weather', schema, strict: true } },
  });
  assert.deepEqual(JSON.parse(r.output_text), { city: 'Oslo', temp_c: -3 });
  const gc = (h.upstream.requests.at(-1)!.body as any).generationConfig;
  assert.equal(gc.responseMimeType, 'application/json');
  assert.deepEqual(gc.responseJsonSchema, schema);
  assert.equal(h.upstream.requests.at(-1)!.model, 'gemini-2.5-flash-lite');
});

test('a 429 during a Responses request fails over to the next account', async () => {
  h.fake!.reports.length = 0;
  h.upstream.failNext('*', 'rate_limited', { retryDelay: '30s' });
  h.upstream.script({ parts: [{ text: 'served by the other account' }] });
  const r = await openai.responses.stream({ model: 'gemini-2.5-pro', input: 'hello' }).finalResponse();
  assert.equal(r.output_text, 'served by the other account');
  const limited = h.fake!.outcomes('rate_limited');
  assert.equal(limited.length, 1);
  const entry = h.requestLog.query({ limit: 1 })[0]!;
  assert.equal(entry.status, 200);
  assert.equal(entry.retries, 1);
  assert.notEqual(entry.account_id, limited[0]!.accountId);
});

test('previous_response_id is a 400 that says the gateway keeps no state', async () => {
  await assert.rejects(openai.responses.create({ model: 'gpt-5', input: 'again', previous_response_id: 'resp_123' }), (e: any) => {
    assert.equal(e.status, 400);
    assert.match(e.error?.message, /previous_response_id.*keeps no conversation state/);
    return true;
  });
});

test('a hosted tool the request depends on is a 400 naming it; one it does not depend on is dropped and noted in the request log', async () => {
  await assert.rejects(
    openai.responses.create({ model: 'gpt-5', input: 'search the web', tools: [{ type: 'web_search' }], tool_choice: 'required' }),
    (e: any) => {
      assert.equal(e.status, 400);
      assert.match(e.error?.message, /"web_search"/);
      return true;
    },
  );
  await assert.rejects(
    openai.responses.create({ model: 'gpt-5', input: 'search', tools: [weather, { type: 'web_search_preview' }], tool_choice: { type: 'web_search_preview' } }),
    (e: any) => e.status === 400 && /"web_search_preview"/.test(e.error?.message),
  );
  h.upstream.script({ parts: [{ text: 'no search needed' }] });
  const r = await openai.responses.create({ model: 'gpt-5', input: 'hi', tools: [weather, { type: 'web_search' }] });
  assert.equal(r.output_text, 'no search needed');
  assert.deepEqual(r.tools.map((t) => t.type), ['function']);
  const sent = h.upstream.requests.at(-1)!.body as any;
  assert.deepEqual(sent.tools[0].functionDeclarations.map((d: any) => d.name), ['get_weather']);
  assert.match(h.requestLog.query({ limit: 1 })[0]!.note ?? '', /dropped hosted tool web_search/);
});
