// The Anthropic door with what current clients send, through the official SDK:
// system-role messages inside `messages` (Claude Code 2.1), JSON-schema
// structured output (`output_config.format`, the AI SDK's generateObject).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
let anthropic: Anthropic;
before(async () => {
  h = await startProxy({ accounts: ['a'] });
  anthropic = new Anthropic({ apiKey: 'client-key', baseURL: h.url, maxRetries: 0 });
});
after(() => h.close());

test('system-role messages are folded into the system instruction, in order, and the request is answered', async () => {
  h.upstream.script({ parts: [{ text: 'Done.' }] });
  const m = await anthropic.messages.create({
    model: 'claude-sonnet-5-5',
    max_tokens: 1024,
    system: 'You are Claude Code.',
    messages: [
      { role: 'user', content: 'hello' },
      { role: 'system', content: [{ type: 'text', text: 'Today is Tuesday.' }] },
      { role: 'assistant', content: 'Hi.' },
      { role: 'user', content: 'what day is it?' },
    ],
  });
  assert.equal((m.content[0] as Anthropic.TextBlock).text, 'Done.');
  const sent = h.upstream.requests.at(-1)!.body as any;
  assert.deepEqual(sent.systemInstruction, { parts: [{ text: 'You are Claude Code.' }, { text: 'Today is Tuesday.' }] });
  assert.deepEqual(sent.contents.map((c: any) => c.role), ['user', 'model', 'user']);
});

test('output_config.format asks Gemini for JSON that follows the schema', async () => {
  h.upstream.script({ parts: [{ text: '{"city":"Oslo","temp_c":-3}' }] });
  const schema = {
    type: 'object',
    properties: { city: { type: 'string' }, temp_c: { type: 'number' } },
    required: ['city', 'temp_c'],
    additionalProperties: false,
  };
  const m = await anthropic.messages.create({
    model: 'claude-haiku-5-5',
    max_tokens: 200,
    messages: [{ role: 'user', content: 'Weather in Oslo as JSON' }],
    output_config: { format: { type: 'json_schema', schema } },
  });
  assert.deepEqual(JSON.parse((m.content[0] as Anthropic.TextBlock).text), { city: 'Oslo', temp_c: -3 });
  const gc = (h.upstream.requests.at(-1)!.body as any).generationConfig;
  assert.equal(gc.responseMimeType, 'application/json');
  assert.deepEqual(gc.responseJsonSchema, schema);
});
