// Bad input that used to reach a 500: a lone surrogate in `model`, a `$ref`
// with broken percent-encoding, nesting of thousands of levels. Each is a 400
// in the door's own error shape, before any account is spent.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({ accounts: ['a'] });
});
after(() => h.close());

const ANTHROPIC = { 'anthropic-version': '2023-06-01' };

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const r = await fetch(h.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await r.text();
  return { status: r.status, text, body: JSON.parse(text) as any };
}

function assertOpenAI400(r: { status: number; body: any; text: string }, pattern: RegExp) {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.body.error.type, 'invalid_request_error');
  assert.match(r.body.error.message, pattern);
}
function assertAnthropic400(r: { status: number; body: any; text: string }, pattern: RegExp) {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, 'invalid_request_error');
  assert.match(r.body.error.message, pattern);
}
function assertGoogle400(r: { status: number; body: any; text: string }, pattern: RegExp) {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.body.error.code, 400);
  assert.equal(r.body.error.status, 'INVALID_ARGUMENT');
  assert.match(r.body.error.message, pattern);
}

/** `{"a":{"a":...1...}}`, `levels` objects deep, as JSON text. */
function deepObject(levels: number): string {
  return '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}

test('a lone surrogate in model is a 400 on the OpenAI and Anthropic doors (JSON, stream, count_tokens)', async () => {
  const before = h.upstream.requests.length;
  for (const stream of [false, true]) {
    const oa = await post('/v1/chat/completions', JSON.stringify({ model: 'gemini-2.5-flash\ud800', stream, messages: [{ role: 'user', content: 'hi' }] }));
    assertOpenAI400(oa, /model.*surrogate/);
    const an = await post('/v1/messages', JSON.stringify({ model: '\udc00claude', stream, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), ANTHROPIC);
    assertAnthropic400(an, /model.*surrogate/);
  }
  const count = await post('/v1/messages/count_tokens', JSON.stringify({ model: 'claude\ud83d', messages: [{ role: 'user', content: 'hi' }] }), ANTHROPIC);
  assertAnthropic400(count, /model.*surrogate/);
  assert.equal(h.upstream.requests.length, before, 'no account was spent');
  // A well-formed pair (an emoji) is no problem in itself.
  const fine = await post('/v1/chat/completions', JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi \ud83d\ude00' }] }));
  assert.equal(fine.status, 200);
});

test('a Gemini-door body nested 8,000 levels deep is a 400 in Google\'s shape on every method, before any account is spent', async () => {
  const before = h.upstream.requests.length;
  const deepContents = `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f","args":${deepObject(8000)}}}]}]}`;
  for (const method of ['generateContent', 'streamGenerateContent', 'streamGenerateContent?alt=sse']) {
    assertGoogle400(await post(`/v1beta/models/gemini-2.5-flash:${method}`, deepContents), /nests .* deep/);
    const arrays = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"x":${'['.repeat(8000)}${']'.repeat(8000)}}`;
    assertGoogle400(await post(`/v1/models/gemini-2.5-flash:${method}`, arrays), /nests .* deep/);
  }
  assertGoogle400(await post('/v1beta/models/text-embedding-004:embedContent', `{"content":{"parts":[{"text":"hi"}]},"x":${deepObject(8000)}}`), /nests .* deep/);
  assert.equal(h.upstream.requests.length, before, 'no account was spent');
  const ok = await post('/v1beta/models/gemini-2.5-flash:generateContent', `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f","args":${deepObject(50)}}}]}]}`);
  assert.equal(ok.status, 200, ok.text);
});

test('a $ref with broken percent-encoding is a 400 naming the schema (tools, response_format, input_schema)', async () => {
  const schema = { type: 'object', $defs: { ok: { type: 'string' } }, properties: { a: { $ref: '#/$defs/%E0%A4%A' } } };
  const tools = await post('/v1/chat/completions', JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f', parameters: schema } }] }));
  assertOpenAI400(tools, /tools\[0\]\.function\.parameters.*\$ref.*percent-encoding/);
  const format = await post('/v1/chat/completions', JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { ...schema, properties: { a: { $ref: '#/$defs/%ZZ' } } } } } }));
  assertOpenAI400(format, /response_format.*\$ref.*percent-encoding/);
  const input = await post('/v1/messages', JSON.stringify({ model: 'claude-x', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'f', input_schema: { ...schema, properties: { a: { $ref: '#/%' } } } }] }), ANTHROPIC);
  assertAnthropic400(input, /input_schema.*\$ref.*percent-encoding/);
});

test('nesting of 5,000+ levels in tool call arguments, tool_use.input or a countTokens generateContentRequest is a 400', async () => {
  const before = h.upstream.requests.length;
  const args = await post(
    '/v1/chat/completions',
    `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":${JSON.stringify(deepObject(5000))}}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`,
  );
  assertOpenAI400(args, /nests .* deep/);
  const input = await post(
    '/v1/messages',
    `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":${deepObject(5000)}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}`,
    ANTHROPIC,
  );
  assertAnthropic400(input, /nests .* deep/);
  const count = await post(
    '/v1beta/models/gemini-2.5-flash:countTokens',
    `{"generateContentRequest":{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f","args":${deepObject(5000)}}}]}]}}`,
  );
  assertGoogle400(count, /nests .* deep/);
  const arrays = await post('/v1beta/models/gemini-2.5-flash:countTokens', `{"generateContentRequest":{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"x":${'['.repeat(8000)}${']'.repeat(8000)}}}`);
  assertGoogle400(arrays, /nests .* deep/);
  // Values inside schemas (enum, const, default, example) are data and are bounded too.
  for (const kw of ['enum', 'const', 'default', 'example', 'examples']) {
    const value = kw === 'enum' || kw === 'examples' ? `[${deepObject(5000)}]` : deepObject(5000);
    const schema = `{"type":"object","properties":{"a":{"type":"object","${kw}":${value}}}}`;
    const tool = await post('/v1/chat/completions', `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${schema}}}]}`);
    assertOpenAI400(tool, new RegExp(`tools\\[0\\]\\.function\\.parameters.*${kw} is nested`));
    const format = await post('/v1/chat/completions', `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${schema}}}}`);
    assertOpenAI400(format, /nested|nests/);
    const input = await post('/v1/messages', `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":${schema}}]}`, ANTHROPIC);
    assertAnthropic400(input, new RegExp(`input_schema.*${kw} is nested`));
  }
  assert.equal(h.upstream.requests.length, before, 'no account was spent');
  // Ordinary nesting still goes through.
  const ok = await post(
    '/v1/messages',
    `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":${deepObject(50)}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}`,
    ANTHROPIC,
  );
  assert.equal(ok.status, 200, ok.text);
});
