// Claude stays Claude (SPEC section 8): the Anthropic door sends claude-*
// models to Claude on Vertex AI when an account has a Vertex lane, passing
// the body on as the client wrote it and the answer back as Anthropic sent
// it; driven with the official Anthropic SDK against the gateway and the
// Vertex AI stand-in. Without a Vertex lane: the Gemini translation, or a 503.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';
import { startVertexUpstream, type VertexUpstream } from '../support/vertex-upstream.ts';

let gw: Harness & { fake: FakePool | null };
let vertex: VertexUpstream;
let pool: FakePool;

before(async () => {
  vertex = await startVertexUpstream({ extraMessageFields: ['future_field'] });
  gw = await startProxy({ accounts: [] });
  pool = gw.fake!;
  gw.config.vertex_base_url = vertex.url;
  const gemini = pool.onToken;
  pool.onToken = (token, a) => {
    gemini(token, a);
    vertex.addToken(token, a.email);
  };
  for (const [id, project] of [['v1', 'proj-one'], ['v2', 'proj-two']] as const) {
    vertex.addProject(project, { users: [`${id}@example.com`] });
    pool.add(id, { projectId: project, vertex: true });
  }
});
after(async () => {
  await gw?.close();
  await vertex?.close();
});

const client = () => new Anthropic({ baseURL: gw.url, apiKey: 'unused-on-loopback', maxRetries: 0 });
const DATED = 'claude-sonnet-4-5-20250929';
const SONNET = 'claude-sonnet-4-6';
const lastVertex = () => vertex.requests.at(-1)!;

test('create: the body reaches Vertex as written (model out, anthropic_version in, unknown fields and number spellings kept), the answer comes back as Anthropic sent it', async () => {
  vertex.script({ content: [{ type: 'text', text: 'Bonjour from Claude' }] });
  const raw = `{"model":"${DATED}","max_tokens":64,"temperature":1.0,"future_field":{"x":1e2},"messages":[{"role":"user","content":"Hi \\u00e9"}]}`;
  const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: raw });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const msg = JSON.parse(text);
  assert.equal(msg.content[0].text, 'Bonjour from Claude');
  assert.match(msg.id, /^msg_vrtx_/);
  const seen = lastVertex();
  assert.equal(seen.action, 'rawPredict');
  assert.equal(seen.model, 'claude-sonnet-4-5@20250929', 'the dated Anthropic id in Vertex spelling');
  assert.ok(seen.project === 'proj-one' || seen.project === 'proj-two');
  assert.equal(seen.rawBody, `{"anthropic_version":"vertex-2023-10-16","max_tokens":64,"temperature":1.0,"future_field":{"x":1e2},"messages":[{"role":"user","content":"Hi \\u00e9"}]}`);
  assert.equal(seen.userProject, null, 'Vertex takes the project from the URL');
  assert.equal(seen.sentApiKey, false);
  const entry = gw.requestLog.query()[0]!;
  assert.equal(entry.model_requested, DATED);
  assert.equal(entry.model_used, 'claude-sonnet-4-5@20250929');
  assert.equal(entry.status, 200);
  assert.equal(entry.service, 'vertex');
  assert.equal(entry.lane, `vertex:${seen.project}`);
  assert.ok(entry.tokens_in > 0 && entry.tokens_out > 0, 'usage read from the pass-through answer');
});

test('stream: every event as Anthropic sent it; thinking with its signature round-trips, tool use with input_json_delta', async () => {
  const c = client();
  vertex.script({
    content: [
      { type: 'thinking', thinking: 'The user asks for a file; I will read it.' },
      { type: 'tool_use', name: 'read_file', input: { path: 'notes.txt', lines: [1, 2, 3] } },
    ],
    chunkChars: 5,
  });
  const tools: Anthropic.Tool[] = [{ name: 'read_file', description: 'Read a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } }];
  const request = { model: SONNET, max_tokens: 4096, thinking: { type: 'enabled' as const, budget_tokens: 2048 }, tools };
  const stream = c.messages.stream({ ...request, messages: [{ role: 'user', content: 'Read notes.txt' }] }, { headers: { 'anthropic-beta': 'interleaved-thinking-2025-05-14,claude-code-20250219' } });
  const deltas = new Set<string>();
  stream.on('streamEvent', (e) => {
    if (e.type === 'content_block_delta') deltas.add(e.delta.type);
  });
  const first = await stream.finalMessage();
  assert.equal(lastVertex().action, 'streamRawPredict');
  assert.equal(lastVertex().headers['anthropic-beta'], 'interleaved-thinking-2025-05-14', 'only the betas Vertex accepts');
  assert.deepEqual([...deltas].sort(), ['input_json_delta', 'signature_delta', 'thinking_delta']);
  assert.match(gw.requestLog.query()[0]!.note ?? '', /claude-code-20250219/);
  const [thinking, toolUse] = first.content;
  assert.ok(thinking?.type === 'thinking' && vertex.signatures.get(thinking.signature) === thinking.thinking, 'the signature is the one Anthropic issued');
  assert.ok(toolUse?.type === 'tool_use');
  assert.deepEqual(toolUse.input, { path: 'notes.txt', lines: [1, 2, 3] });

  // The tool round trip: the thinking block goes back unmodified, the stand-in checks its signature.
  vertex.script((body) => {
    const last = (body.messages as any[]).at(-1);
    return { content: [{ type: 'text', text: `read: ${last.content[0].content}` }] };
  });
  const second = await c.messages.create({
    ...request,
    messages: [
      { role: 'user', content: 'Read notes.txt' },
      { role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: 'secret-token-42' }] },
    ],
  });
  assert.equal(second.content[0]!.type === 'text' && second.content[0]!.text, 'read: secret-token-42');

  // A modified thinking block: Anthropic's own error, in Anthropic's shape, passed back.
  const tampered = structuredClone(first.content) as any[];
  tampered[0].thinking = 'something else';
  await assert.rejects(
    c.messages.create({
      ...request,
      messages: [
        { role: 'user', content: 'Read notes.txt' },
        { role: 'assistant', content: tampered },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: 'x' }] },
      ],
    }),
    (e: any) => e.status === 400 && e.error?.type === 'error' && e.error.error.type === 'invalid_request_error' && /Invalid `signature`/.test(e.error.error.message),
  );
});

test('a role:"system" message inside messages is passed through as written', async () => {
  const messages = [
    { role: 'user', content: 'Hi' },
    { role: 'system', content: 'From now on answer in French.' },
  ];
  const res = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-opus-4-8', max_tokens: 100, messages }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.deepEqual((lastVertex().body as any).messages, messages);
});

test('count_tokens: count-tokens:rawPredict with the Vertex model id in the body', async () => {
  const counted = await client().messages.countTokens({ model: DATED, messages: [{ role: 'user', content: 'how many tokens are in this request?' }] });
  assert.ok(counted.input_tokens > 0);
  const seen = lastVertex();
  assert.equal(seen.model, 'count-tokens');
  assert.equal(seen.action, 'rawPredict');
  assert.equal((seen.body as any).model, 'claude-sonnet-4-5@20250929');
  assert.equal((seen.body as any).anthropic_version, 'vertex-2023-10-16');
});

test('429 on one Vertex lane fails over to the other; the lane cools down for that model only', async () => {
  vertex.setProjectQuota('proj-one', 'claude-haiku-4-5@20251001', 0);
  const before = vertex.servedByProject.get('proj-two') ?? 0;
  for (let i = 0; i < 3; i++) {
    const msg = await client().messages.create({ model: 'claude-haiku-4-5-20251001', max_tokens: 50, messages: [{ role: 'user', content: `ping ${i}` }] });
    assert.equal(msg.content[0]!.type, 'text');
  }
  assert.equal((vertex.servedByProject.get('proj-two') ?? 0) - before, 3, 'every request served by proj-two');
  const limited = pool.reports.filter((r) => r.outcome.kind === 'rate_limited');
  assert.equal(limited.length, 1, 'proj-one cooled once, then skipped');
  assert.equal(limited[0]!.accountId, 'v1');
  assert.equal(limited[0]!.model, 'claude-haiku-4-5@20251001');
  // Another model still uses proj-one.
  vertex.script({ content: [{ type: 'text', text: 'still here' }] });
  await client().messages.create({ model: SONNET, max_tokens: 50, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-grantpool-account': 'v1' } });
  assert.equal(lastVertex().project, 'proj-one');
  // Both lanes limited: a 429 in Anthropic's shape.
  vertex.setProjectQuota('proj-two', 'claude-haiku-4-5@20251001', 0);
  pool.accounts.forEach((a) => a.cooling.clear());
  await assert.rejects(
    client().messages.create({ model: 'claude-haiku-4-5-20251001', max_tokens: 50, messages: [{ role: 'user', content: 'x' }] }),
    (e: any) => e.status === 429 && e.error?.error?.type === 'rate_limit_error',
  );
  pool.accounts.forEach((a) => a.cooling.clear());
});

test('Vertex\'s own errors come back in Anthropic\'s shape; a 401 refreshes; 529 overloaded fails over', async () => {
  vertex.denyModel('proj-one', 'claude-opus-4-1@20250805');
  vertex.denyModel('proj-two', 'claude-opus-4-1@20250805');
  const denied = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-opus-4-1-20250805', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
  });
  const body = await denied.json();
  assert.equal(denied.status, 400);
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'invalid_request_error');
  assert.match(body.error.message, /not allowed to use Publisher Model/);

  const refreshes = pool.refreshes;
  vertex.failNext('unauthorized');
  await client().messages.create({ model: SONNET, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(pool.refreshes, refreshes + 1);
  assert.equal(gw.requestLog.query()[0]!.retries, 1, 'the same account, with a fresh token');

  vertex.failNext('overloaded');
  const msg = await client().messages.create({ model: SONNET, max_tokens: 10, messages: [{ role: 'user', content: 'after overload' }] });
  assert.equal(msg.content[0]!.type === 'text' && msg.content[0]!.text, 'Echo: after overload');
  assert.equal(gw.requestLog.query()[0]!.retries, 1);
});

test('without a Vertex lane: claude_fallback "gemini" translates to Gemini, "none" answers 503 saying how to enable Vertex AI', async () => {
  const saved = pool.accounts.splice(0);
  pool.add('g1');
  try {
    gw.upstream.setDefaultAnswer({ parts: [{ text: 'Gemini here' }] });
    const before = vertex.requests.length;
    const msg = await client().messages.create({ model: SONNET, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(msg.content[0]!.type === 'text' && msg.content[0]!.text, 'Gemini here');
    assert.equal(vertex.requests.length, before, 'nothing went to Vertex');
    assert.ok(gw.upstream.requests.some((r) => r.action === 'generateContent'));

    gw.config.claude_fallback = 'none';
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: SONNET, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    });
    const err = await res.json();
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('x-should-retry'), 'false', 'Anthropic clients do not retry it');
    assert.equal(err.type, 'error');
    assert.match(err.error.message, /no account can serve Vertex AI/);
    assert.match(err.error.message, /grantpool accounts project <account> --enable-vertex <project>/);
    // A Gemini model on the Anthropic door is not affected.
    gw.upstream.setDefaultAnswer({ parts: [{ text: 'flash' }] });
    const flash = await client().messages.create({ model: 'gemini-2.5-flash', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(flash.content[0]!.type === 'text' && flash.content[0]!.text, 'flash');
  } finally {
    gw.config.claude_fallback = 'gemini';
    gw.upstream.setDefaultAnswer(null);
    pool.accounts.splice(0, pool.accounts.length, ...saved);
  }
});

test('/v1/models lists the Claude models Vertex lanes serve (the default list, or vertex_claude_models); Anthropic clients get Anthropic\'s shape', async () => {
  const openai = await (await fetch(`${gw.url}/v1/models`)).json();
  const claude = openai.data.filter((m: any) => m.owned_by === 'anthropic');
  assert.ok(claude.some((m: any) => m.id === 'claude-sonnet-4-5-20250929' && m.resolves_to === 'vertex:claude-sonnet-4-5@20250929'));
  assert.ok(openai.data.some((m: any) => m.id === 'gemini-2.5-flash'), 'the Gemini models are still there');
  const page = await client().models.list();
  assert.ok(page.data.some((m) => m.id === 'claude-opus-4-8' && m.type === 'model'));
  gw.config.vertex_claude_models = { 'claude-house-model': 'claude-opus-4-8' };
  try {
    const ids = (await client().models.list()).data.map((m) => m.id);
    assert.deepEqual(ids, ['claude-house-model']);
    vertex.script({ content: [{ type: 'text', text: 'house' }] });
    await client().messages.create({ model: 'claude-house-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(lastVertex().model, 'claude-opus-4-8');
  } finally {
    gw.config.vertex_claude_models = {};
  }
  // Without a Vertex lane, no Claude model is listed as served by Vertex.
  const saved = pool.accounts.splice(0);
  pool.add('g2');
  try {
    const list = await (await fetch(`${gw.url}/v1/models`)).json();
    assert.equal(list.data.filter((m: any) => m.owned_by === 'anthropic').length, 0);
  } finally {
    pool.accounts.splice(0, pool.accounts.length, ...saved);
  }
});
