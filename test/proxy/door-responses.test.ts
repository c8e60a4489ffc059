// The Responses door as pure translations: requests to Gemini, Gemini answers
// and streams to Responses items and events, the thought-signature envelope,
// reasoning effort per model family, and the requests it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponsesDoor } from '../../src/proxy/openai/responses-door.ts';
import type { ResponseInfo } from '../../src/proxy/door.ts';
import { createThoughtSignatureCache, decodeResponsesSignatures } from '../../src/proxy/thought-signatures.ts';
import { thinkingFor, withReasoningEffort } from '../../src/proxy/translate-util.ts';
import { findRequestSchemaViolations } from '../support/gemini-schema-rules.ts';
import { testBadRequests } from '../support/golden-bad-requests.ts';

const newDoor = () => createResponsesDoor({ signatures: createThoughtSignatureCache() });
const infoFor = (door: ReturnType<typeof newDoor>, body: Record<string, unknown>): ResponseInfo => ({
  requestedModel: String(body.model),
  id: 'chatcmpl-abc',
  created: 1700000000,
  options: door.parseRequest(body).responseOptions ?? {},
});

function events(text: string): any[] {
  return text.split('\n\n').filter(Boolean).map((block) => {
    const m = /^event: (\S+)\ndata: (.*)$/s.exec(block);
    assert.ok(m, block);
    return JSON.parse(m[2]!);
  });
}

test('request: messages of every role, images, tool outputs with images, tools, tool_choice, structured output', () => {
  const parsed = newDoor().parseRequest({
    model: 'gpt-5',
    instructions: 'Be helpful.',
    input: [
      { role: 'developer', content: 'Follow the rules.' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', detail: 'auto', image_url: 'data:image/png;base64,iVBORw0KGgo=' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Let me look.', annotations: [] }] },
      { type: 'function_call', call_id: 'call_1', name: 'zoom', arguments: '{"factor":2}' },
      { type: 'function_call_output', call_id: 'call_1', output: [{ type: 'input_text', text: 'zoomed' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] },
      { role: 'system', content: [{ type: 'input_text', text: 'Late system note.' }] },
    ],
    tools: [{ type: 'function', name: 'zoom', description: 'Zoom', strict: true, parameters: { type: 'object', properties: { factor: { type: 'number' } }, required: ['factor'], additionalProperties: false } }],
    tool_choice: { type: 'function', name: 'zoom' },
    text: { format: { type: 'json_object' } },
    temperature: 0.2, top_p: 0.9, max_output_tokens: 500,
    user: 'u-1', metadata: { k: 'v' }, truncation: 'auto', service_tier: 'auto', store: true,
  });
  assert.deepEqual(parsed.gemini, {
    contents: [
      { role: 'user', parts: [{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } }] },
      { role: 'model', parts: [{ text: 'Let me look.' }, { functionCall: { name: 'zoom', args: { factor: 2 } }, thoughtSignature: 'skip_thought_signature_validator' }] },
      { role: 'user', parts: [{ functionResponse: { name: 'zoom', response: { output: 'zoomed' } } }, { inlineData: { mimeType: 'image/png', data: 'AAAA' } }] },
    ],
    systemInstruction: { parts: [{ text: 'Be helpful.' }, { text: 'Follow the rules.' }, { text: 'Late system note.' }] },
    tools: [{ functionDeclarations: [{ name: 'zoom', description: 'Zoom', parameters: { type: 'OBJECT', properties: { factor: { type: 'NUMBER' } }, required: ['factor'] } }] }],
    toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['zoom'] } },
    generationConfig: { temperature: 0.2, topP: 0.9, maxOutputTokens: 500, responseMimeType: 'application/json' },
  });
  assert.equal(parsed.sessionKey, 'u-1');
  assert.equal(parsed.stream, false);
  assert.deepEqual(findRequestSchemaViolations(parsed.gemini), []);
});

test('request: a string input; prompt_cache_key is the session key; effort alone asks for no thoughts', () => {
  const parsed = newDoor().parseRequest({ model: 'm', input: 'hi', prompt_cache_key: 'conv-9', user: 'u', reasoning: { effort: 'low' }, stream: true });
  assert.deepEqual(parsed.gemini, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
  assert.equal(parsed.sessionKey, 'conv-9');
  assert.equal(parsed.reasoningEffort, 'low');
  assert.equal(parsed.stream, true);
});

test('request: tools added mid-conversation by an additional_tools item join the declarations', () => {
  const parsed = newDoor().parseRequest({
    model: 'gpt-5',
    tools: [{ type: 'function', name: 'a', parameters: { type: 'object', properties: {} } }],
    input: [
      { role: 'user', content: 'x' },
      { type: 'additional_tools', role: 'developer', tools: [{ type: 'function', name: 'b', parameters: { type: 'object', properties: { q: { type: 'string' } } } }] },
    ],
  });
  assert.deepEqual((parsed.gemini.tools as any)[0].functionDeclarations.map((d: any) => d.name), ['a', 'b']);
});

test('namespace tools: members become <namespace>__<name> functions, and calls come back with their namespace', () => {
  const door = newDoor();
  const body = {
    model: 'gpt-5',
    input: [{ role: 'user', content: 'x' }, { type: 'function_call', call_id: 'call_9', namespace: 'github', name: 'search', arguments: '{}' }, { type: 'function_call_output', call_id: 'call_9', output: 'none' }],
    tools: [{ type: 'namespace', name: 'github', description: 'GitHub', tools: [{ type: 'function', name: 'search', parameters: { type: 'object', properties: { q: { type: 'string' } } } }] }],
  };
  const parsed = door.parseRequest(body);
  assert.deepEqual((parsed.gemini.tools as any)[0].functionDeclarations.map((d: any) => d.name), ['github__search']);
  assert.equal((parsed.gemini.contents as any)[1].parts[0].functionCall.name, 'github__search');
  const out = door.toResponse({ candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'github__search', args: { q: 'grantpool' } } }] }, finishReason: 'STOP' }] }, infoFor(door, body)) as any;
  assert.deepEqual([out.output[0].namespace, out.output[0].name], ['github', 'search']);
});

test('reasoning effort fits the model: thinkingLevel on Gemini 3 and later, thinkingBudget before', () => {
  assert.deepEqual(thinkingFor('medium', 'gemini-3-pro-preview'), { thinkingLevel: 'high' });
  assert.deepEqual(thinkingFor('minimal', 'gemini-3-pro-preview'), { thinkingLevel: 'low' });
  assert.deepEqual(thinkingFor('minimal', 'gemini-3.5-flash'), { thinkingLevel: 'minimal' });
  assert.deepEqual(thinkingFor('medium', 'gemini-3.8-flash-lite'), { thinkingLevel: 'medium' });
  assert.deepEqual(thinkingFor('xhigh', 'gemini-4-flash'), { thinkingLevel: 'high' });
  assert.deepEqual(thinkingFor('low', 'gemini-2.5-flash'), { thinkingBudget: 1024 });
  assert.deepEqual(thinkingFor('none', 'gemini-2.5-flash'), { thinkingBudget: 0 });
  assert.deepEqual(thinkingFor('none', 'gemini-2.5-pro'), { thinkingBudget: 128 });
  const gemini = { contents: [], generationConfig: { maxOutputTokens: 5, thinkingConfig: { includeThoughts: true } } };
  assert.deepEqual(withReasoningEffort(gemini, 'high', 'gemini-2.5-flash').generationConfig, {
    maxOutputTokens: 5,
    thinkingConfig: { thinkingBudget: 24576, includeThoughts: true },
  });
  assert.equal(withReasoningEffort(gemini, undefined, 'gemini-2.5-flash'), gemini);
});

test('a thought signature survives a gateway restart: it travels in the reasoning item encrypted_content', () => {
  const body = { model: 'gpt-5', input: 'weather?', include: ['reasoning.encrypted_content'], tools: [{ type: 'function', name: 'w', parameters: { type: 'object', properties: {} } }] };
  const before = newDoor();
  const out = before.toResponse(
    { candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'w', args: {} }, thoughtSignature: 'SIG_A' }, { functionCall: { name: 'w', args: { again: true } } }] }, finishReason: 'STOP' }] },
    infoFor(before, body),
  ) as any;
  assert.deepEqual(out.output.map((o: any) => o.type), ['reasoning', 'function_call', 'function_call']);
  const [reasoning, call1, call2] = out.output;
  assert.deepEqual(decodeResponsesSignatures(reasoning.encrypted_content), { calls: { [call1.call_id]: 'SIG_A' } });
  assert.deepEqual(reasoning.summary, []);
  // A new door (empty signature cache, as after a restart) reads it back from the reasoning item.
  const after = newDoor();
  const parsed = after.parseRequest({
    ...body,
    input: ['weather?', reasoning, call1, call2].map((x) => (typeof x === 'string' ? { role: 'user', content: x } : x)).concat([
      { type: 'function_call_output', call_id: call1.call_id, output: 'sunny' },
      { type: 'function_call_output', call_id: call2.call_id, output: 'sunny too' },
    ]),
  });
  const model = (parsed.gemini.contents as any[])[1];
  assert.equal(model.parts[0].thoughtSignature, 'SIG_A');
  assert.equal(model.parts[1].thoughtSignature, undefined);
  // Without include, no encrypted content is handed out (the gateway's cache carries the signature).
  const plain = before.toResponse(
    { candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'w', args: {} }, thoughtSignature: 'SIG_B' }] }, finishReason: 'STOP' }] },
    infoFor(before, { ...body, include: [] }),
  ) as any;
  assert.deepEqual(plain.output.map((o: any) => o.type), ['function_call']);
});

test('item_reference to an item this gateway answered with (the AI SDK with store left on) is served from memory', () => {
  const door = newDoor();
  const body = { model: 'gpt-5', input: 'Tell me a joke' };
  const stream = door.streamTranslator(infoFor(door, body));
  const ev = events(stream.start() + stream.chunk({ candidates: [{ content: { role: 'model', parts: [{ text: 'Why did the chicken…' }] }, finishReason: 'STOP' }] }) + stream.end());
  const messageId = ev.at(-1).response.output[0].id;
  const parsed = door.parseRequest({ model: 'gpt-5', input: [{ role: 'user', content: 'Tell me a joke' }, { type: 'item_reference', id: messageId }, { role: 'user', content: 'Another' }] });
  assert.deepEqual(parsed.gemini.contents, [
    { role: 'user', parts: [{ text: 'Tell me a joke' }] },
    { role: 'model', parts: [{ text: 'Why did the chicken…' }] },
    { role: 'user', parts: [{ text: 'Another' }] },
  ]);
});

test('stream: a reasoning summary, then text; output indexes and item ids line up; usage at the end', () => {
  const door = newDoor();
  const t = door.streamTranslator(infoFor(door, { model: 'gpt-5', input: 'x', reasoning: { effort: 'high', summary: 'auto' } }));
  const text =
    t.start() +
    t.chunk({ candidates: [{ content: { role: 'model', parts: [{ text: 'Thinking', thought: true }] } }] }) +
    t.chunk({ candidates: [{ content: { role: 'model', parts: [{ text: ' more.', thought: true }, { text: 'Answer' }] } }] }) +
    t.chunk({ candidates: [{ content: { role: 'model', parts: [{ text: '!' }] }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, thoughtsTokenCount: 4, totalTokenCount: 9 } }) +
    t.end();
  const ev = events(text);
  assert.deepEqual(ev.map((e) => e.type), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.reasoning_summary_part.added',
    'response.reasoning_summary_text.delta', 'response.reasoning_summary_text.delta',
    'response.reasoning_summary_text.done', 'response.reasoning_summary_part.done', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.completed',
  ]);
  assert.deepEqual(ev.map((e) => e.sequence_number), ev.map((_, i) => i));
  const [rs, msg] = [ev[2].item, ev[9].item];
  for (const e of ev.slice(3, 9)) assert.ok(e.item_id === rs.id || e.item?.id === rs.id);
  for (const e of ev.slice(10, 16)) assert.ok((e.item_id ?? e.item.id) === msg.id && e.output_index === 1);
  const done = ev.at(-1).response;
  assert.deepEqual(done.output[0].summary, [{ type: 'summary_text', text: 'Thinking more.' }]);
  assert.equal(done.output[1].content[0].text, 'Answer!');
  assert.deepEqual(done.usage, { input_tokens: 3, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 }, output_tokens: 6, output_tokens_details: { reasoning_tokens: 4 }, total_tokens: 9 });
  assert.equal(t.error(502, 'late'), '', 'nothing after the end');
});

test('stream: a blocked prompt ends incomplete (content_filter); an error after the start is response.failed with a code', () => {
  const door = newDoor();
  const info = infoFor(door, { model: 'gpt-5', input: 'x' });
  const blocked = door.streamTranslator(info);
  const ev = events(blocked.start() + blocked.chunk({ promptFeedback: { blockReason: 'SAFETY' } }) + blocked.end());
  assert.equal(ev.at(-1).type, 'response.incomplete');
  assert.deepEqual(ev.at(-1).response.incomplete_details, { reason: 'content_filter' });
  const broken = door.streamTranslator(info);
  const ev2 = events(broken.start() + broken.chunk({ candidates: [{ content: { parts: [{ text: 'par' }] } }] }) + broken.error(502, 'upstream error: Resource has been exhausted (e.g. check quota).'));
  assert.equal(ev2.at(-1).type, 'response.failed');
  assert.equal(ev2.at(-1).response.error.code, 'rate_limit_exceeded');
  assert.deepEqual(ev2.at(-1).response.output, []);
});

test('error bodies: OpenAI shape, codes clients act on', () => {
  const door = newDoor();
  assert.deepEqual(door.errorBody(400, 'The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).', 'upstream_error'), {
    error: { message: 'The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).', type: 'invalid_request_error', param: null, code: 'context_length_exceeded' },
  });
  assert.equal((door.errorBody(429, 'Every account tried is rate limited. Retry after 12s.', 'rate_limited') as any).error.code, 'rate_limit_exceeded');
  const daily = 'Every account tried is rate limited for model m (2 tried): a@x: daily quota exhausted: Quota exceeded; b@x: daily quota exhausted: Quota exceeded. Retry after 3600s.';
  assert.equal((door.errorBody(429, daily, 'rate_limited') as any).error.code, 'insufficient_quota');
  assert.equal((door.errorBody(429, daily.replace('b@x: daily quota exhausted', 'b@x: rate limited, retry in 9s'), 'rate_limited') as any).error.code, 'rate_limit_exceeded');
  assert.equal((door.errorBody(503, 'No account could serve this request', 'upstream_unavailable') as any).error.code, 'upstream_unavailable');
  assert.equal((door.errorBody(400, 'bad', 'invalid_request') as any).error.code, 'invalid_request');
});

const base = { model: 'gpt-5' };
testBadRequests(
  [
    { name: 'previous_response_id', request: { ...base, input: 'x', previous_response_id: 'resp_1' }, message: 'keeps no conversation state' },
    { name: 'conversation', request: { ...base, input: 'x', conversation: 'conv_1' }, message: '"conversation" is not supported' },
    { name: 'background', request: { ...base, input: 'x', background: true }, message: '"background": true is not supported' },
    { name: 'stored prompt', request: { ...base, prompt: { id: 'pmpt_1' } }, message: 'stored prompt' },
    { name: 'no input', request: { ...base }, message: '"input" is required' },
    { name: 'item_reference to an unknown item', request: { ...base, input: [{ type: 'item_reference', id: 'msg_1' }] }, message: 'item_reference "msg_1" is not known to this gateway' },
    { name: 'unknown item', request: { ...base, input: [{ type: 'telepathy' }] }, message: 'unknown input item type "telepathy"' },
    { name: 'orphan output', request: { ...base, input: [{ role: 'user', content: 'x' }, { type: 'function_call_output', call_id: 'call_x', output: '1' }] }, message: 'call_id "call_x" does not match' },
    { name: 'file_id image', request: { ...base, input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1', detail: 'auto' }] }] }, message: 'Files API' },
    { name: 'hosted tool required', request: { ...base, input: 'x', tools: [{ type: 'local_shell' }], tool_choice: 'required' }, message: 'tool type "local_shell"' },
    { name: 'hosted tool chosen', request: { ...base, input: 'x', tools: [{ type: 'file_search', vector_store_ids: [] }], tool_choice: { type: 'file_search' } }, message: 'tool type "file_search"' },
    { name: 'tool_choice names a missing tool', request: { ...base, input: 'x', tools: [], tool_choice: { type: 'function', name: 'nope' } }, message: 'names tool "nope"' },
    { name: 'bad effort', request: { ...base, input: 'x', reasoning: { effort: 'max' } }, message: '"reasoning.effort" must be one of' },
    { name: 'json_schema without schema', request: { ...base, input: 'x', text: { format: { type: 'json_schema', name: 'x' } } }, message: '"text.format.schema" is required' },
    { name: 'only system messages', request: { ...base, input: [{ role: 'system', content: 'x' }] }, message: 'at least one user or assistant item' },
  ],
  newDoor,
);
