// The Vertex AI stand-in behaves like Vertex AI where a gateway can get it wrong:
// introspected tokens and projects, Google's errors from the front end,
// Anthropic's errors and SSE from the Anthropic publisher (read here with the
// official Anthropic SDK, sending what Anthropic's own Vertex client sends).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startVertexUpstream, CLOUD_PLATFORM_SCOPE, type VertexUpstream } from '../support/vertex-upstream.ts';
import { startCloudProjects, type CloudProjects } from '../support/cloud-projects.ts';

let v: VertexUpstream;
let cloud: CloudProjects;
const infos = new Map<string, { email: string; scopes: string[] }>();

before(async () => {
  infos.set('tok-ann', { email: 'ann@example.com', scopes: ['openid', CLOUD_PLATFORM_SCOPE] });
  infos.set('tok-narrow', { email: 'ann@example.com', scopes: ['https://www.googleapis.com/auth/generative-language.retriever'] });
  infos.set('tok-bob', { email: 'bob@example.com', scopes: [CLOUD_PLATFORM_SCOPE] });
  const tokenInfo = async (t: string) => infos.get(t) ?? null;
  cloud = await startCloudProjects({ tokenInfo });
  cloud.addProject('ann-vertex', { members: { 'ann@example.com': 'owner' }, enabled: ['aiplatform.googleapis.com'], billing: true });
  cloud.addProject('ann-plain', { members: { 'ann@example.com': 'owner' }, enabled: ['generativelanguage.googleapis.com'] });
  cloud.addProject('ann-second', { members: { 'ann@example.com': 'consumer' }, enabled: ['aiplatform.googleapis.com'] });
  v = await startVertexUpstream({ tokenInfo, directory: cloud });
});
after(async () => {
  await v?.close();
  await cloud?.close();
});

const base = (project: string, publisher: string, model: string, method: string, location = 'global') =>
  `/v1/projects/${project}/locations/${location}/publishers/${publisher}/models/${model}:${method}`;

async function call(path: string, body: unknown, token: string | null = 'tok-ann', headers: Record<string, string> = {}) {
  const res = await fetch(v.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json };
}

const claude = { anthropic_version: 'vertex-2023-10-16', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] };
const SONNET = 'claude-sonnet-4-5@20250929';

/** The official SDK, rewritten on the wire as @anthropic-ai/vertex-sdk does (model to the URL, anthropic_version into the body). */
function vertexClient(project: string, token = 'tok-ann'): Anthropic {
  return new Anthropic({
    apiKey: 'unused',
    baseURL: v.url,
    maxRetries: 0,
    fetch: async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      const body = JSON.parse(String(init!.body));
      const headers = new Headers(init!.headers);
      headers.delete('x-api-key');
      headers.set('authorization', `Bearer ${token}`);
      if (!body.anthropic_version) body.anthropic_version = 'vertex-2023-10-16';
      if (url.pathname === '/v1/messages/count_tokens') {
        url.pathname = `/v1/projects/${project}/locations/global/publishers/anthropic/models/count-tokens:rawPredict`;
      } else {
        const model = body.model;
        delete body.model;
        url.pathname = `/v1/projects/${project}/locations/global/publishers/anthropic/models/${model}:${body.stream ? 'streamRawPredict' : 'rawPredict'}`;
      }
      url.search = '';
      return fetch(url, { ...init, headers, body: JSON.stringify(body) });
    },
  });
}

test('the front end checks the token, its scope, the project and Vertex AI in it, with Google error bodies', async () => {
  const path = base('ann-vertex', 'anthropic', SONNET, 'rawPredict');
  const none = await call(path, claude, null);
  assert.equal(none.status, 401);
  assert.equal(none.json.error.status, 'UNAUTHENTICATED');
  assert.equal((await call(path, claude, 'tok-unknown')).status, 401);
  const narrow = await call(path, claude, 'tok-narrow');
  assert.equal(narrow.status, 403);
  assert.equal(narrow.json.error.details[0].reason, 'ACCESS_TOKEN_SCOPE_INSUFFICIENT');
  const other = await call(path, claude, 'tok-bob');
  assert.equal(other.status, 403);
  assert.equal(other.json.error.status, 'PERMISSION_DENIED');
  assert.equal(other.json.error.details[0].reason, 'IAM_PERMISSION_DENIED');
  const disabled = await call(base('ann-plain', 'anthropic', SONNET, 'rawPredict'), claude);
  assert.equal(disabled.status, 403);
  assert.equal(disabled.json.error.details[0].reason, 'SERVICE_DISABLED');
  assert.equal(disabled.json.error.details[0].metadata.service, 'aiplatform.googleapis.com');
  assert.match(disabled.json.error.message, /Vertex AI API has not been used in project ann-plain/);
  // The project number works as well as the id.
  const number = cloud.project('ann-vertex')!.number;
  assert.equal((await call(base(number, 'anthropic', SONNET, 'rawPredict'), claude)).status, 200);
  const wrongPath = await call('/v1/projects/ann-vertex/publishers/anthropic/models/x:rawPredict', claude);
  assert.equal(wrongPath.status, 404);
  const unknownModel = await call(base('ann-vertex', 'anthropic', 'claude-nonexistent', 'rawPredict'), claude);
  assert.equal(unknownModel.status, 404);
  assert.match(unknownModel.json.error.message, /^Publisher Model `projects\/ann-vertex\/locations\/global\/publishers\/anthropic\/models\/claude-nonexistent` not found/);
  v.denyModel('ann-second', SONNET);
  const garden = await call(base('ann-second', 'anthropic', SONNET, 'rawPredict'), claude);
  assert.equal(garden.status, 400);
  assert.equal(garden.json.error.status, 'FAILED_PRECONDITION');
});

test('the Anthropic publisher wants anthropic_version, no model, a valid Messages body, and accepted betas; its errors are Anthropic\'s', async () => {
  const path = base('ann-vertex', 'anthropic', SONNET, 'rawPredict');
  const { anthropic_version: _v, ...noVersion } = claude;
  const r1 = await call(path, noVersion);
  assert.equal(r1.status, 400);
  assert.equal(r1.json.type, 'error');
  assert.equal(r1.json.error.type, 'invalid_request_error');
  assert.match(r1.json.error.message, /anthropic_version/);
  assert.match(r1.json.request_id, /^req_vrtx_/);
  assert.match((await call(path, { ...claude, anthropic_version: '2023-06-01' })).json.error.message, /vertex-2023-10-16/);
  assert.equal((await call(path, { ...claude, model: SONNET })).json.error.message, 'model: Extra inputs are not permitted');
  assert.equal((await call(path, { ...claude, unknown_field: 1 })).json.error.message, 'unknown_field: Extra inputs are not permitted');
  const { max_tokens: _m, ...noMax } = claude;
  assert.equal((await call(path, noMax)).json.error.message, 'max_tokens: Field required');
  assert.equal((await call(path, { ...claude, messages: [{ role: 'system', content: 'x' }] })).status, 400);
  const beta = await call(path, claude, 'tok-ann', { 'anthropic-beta': 'interleaved-thinking-2025-05-14,claude-code-20250219' });
  assert.equal(beta.status, 400);
  assert.match(beta.json.error.message, /^Unexpected value\(s\) `claude-code-20250219` for the `anthropic-beta` header/);
  // context_management needs its beta.
  assert.equal((await call(path, { ...claude, context_management: { edits: [] } })).status, 400);
  assert.equal((await call(path, { ...claude, context_management: { edits: [] } }, 'tok-ann', { 'anthropic-beta': 'context-management-2025-06-27' })).status, 200);
  // The method must agree with `stream`.
  assert.equal((await call(path, { ...claude, stream: true })).status, 400);
  const ok = await call(path, claude);
  assert.equal(ok.status, 200);
  assert.equal(ok.json.type, 'message');
  assert.match(ok.json.id, /^msg_vrtx_/);
  assert.equal(ok.json.content[0].text, 'Echo: Hello');
  assert.equal(ok.json.stop_reason, 'end_turn');
  assert.ok(ok.json.usage.input_tokens > 0 && ok.json.usage.output_tokens > 0);
  assert.equal(v.requests.at(-1)!.rawBody, JSON.stringify(claude));
});

test('mid-conversation system messages only where the model takes them (after a user turn)', async () => {
  const messages = [{ role: 'user', content: 'Hi' }, { role: 'system', content: 'Answer in French.' }];
  assert.equal((await call(base('ann-vertex', 'anthropic', 'claude-opus-4-8', 'rawPredict'), { ...claude, messages })).status, 200);
  const older = await call(base('ann-vertex', 'anthropic', SONNET, 'rawPredict'), { ...claude, messages });
  assert.equal(older.status, 400);
  assert.equal(older.json.error.message, "messages.1.role: Input should be 'user' or 'assistant'");
});

test('streaming with the official SDK: thinking with signature_delta, tool use with input_json_delta, then the round trip checks the signature', async () => {
  const client = vertexClient('ann-vertex');
  v.script({
    content: [
      { type: 'thinking', thinking: 'The user wants the weather; I should call the tool.' },
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } },
    ],
    chunkChars: 7,
  });
  const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
  const stream = client.messages.stream({
    model: SONNET,
    max_tokens: 4096,
    thinking: { type: 'enabled', budget_tokens: 2048 },
    tools,
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
  });
  const kinds: string[] = [];
  stream.on('streamEvent', (e) => kinds.push(e.type === 'content_block_delta' ? `delta:${e.delta.type}` : e.type));
  const msg = await stream.finalMessage();
  assert.equal(v.requests.at(-1)!.action, 'streamRawPredict');
  assert.deepEqual([...new Set(kinds)], [
    'message_start', 'content_block_start', 'delta:thinking_delta', 'delta:signature_delta', 'content_block_stop',
    'delta:text_delta', 'delta:input_json_delta', 'message_delta', 'message_stop',
  ]);
  assert.equal(msg.stop_reason, 'tool_use');
  const [thinking, , toolUse] = msg.content;
  assert.equal(thinking!.type, 'thinking');
  assert.ok(thinking!.type === 'thinking' && v.signatures.get(thinking.signature) === thinking.thinking);
  assert.ok(toolUse!.type === 'tool_use');
  assert.deepEqual(toolUse.input, { city: 'Paris', unit: 'celsius' });
  assert.match(toolUse.id, /^toolu_vrtx_/);

  // The next turn: the thinking block must come back unmodified, the tool_use answered.
  const next = (content: Anthropic.ContentBlockParam[]) =>
    client.messages.create({
      model: SONNET,
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: '18 degrees' }] },
      ],
    });
  const asSent = msg.content as unknown as Anthropic.ContentBlockParam[];
  const ok = await next(asSent);
  assert.equal(ok.content[0]!.type, 'text');
  const tampered = structuredClone(asSent) as any[];
  tampered[0].thinking += ' (edited)';
  await assert.rejects(next(tampered), (e: any) => e.status === 400 && /Invalid `signature` in `thinking` block/.test(e.message));
  await assert.rejects(next(asSent.slice(1)), (e: any) => e.status === 400 && /must start with a thinking block/.test(e.message));
  await assert.rejects(
    client.messages.create({ model: SONNET, max_tokens: 100, tools, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [toolUse] }, { role: 'user', content: 'no result' }] }),
    (e: any) => e.status === 400 && /`tool_use` ids were found without `tool_result` blocks/.test(e.message),
  );
});

test('count tokens: count-tokens:rawPredict with the model in the body, and its own beta list', async () => {
  const client = vertexClient('ann-vertex');
  const counted = await client.messages.countTokens({ model: SONNET, messages: [{ role: 'user', content: 'how many tokens are in this request?' }] });
  assert.ok(counted.input_tokens > 0);
  const rec = v.requests.at(-1)!;
  assert.equal(rec.model, 'count-tokens');
  assert.equal((rec.body as any).model, SONNET);
  const path = base('ann-vertex', 'anthropic', 'count-tokens', 'rawPredict');
  const web = await call(path, { model: SONNET, messages: [{ role: 'user', content: 'x' }] }, 'tok-ann', { 'anthropic-beta': 'web-search-2025-03-05' });
  assert.equal(web.status, 400);
  assert.equal((await call(path, { model: SONNET, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })).json.error.message, 'max_tokens: Extra inputs are not permitted');
});

test('per-project quota and scripted failures: Vertex\'s 429 (array-wrapped when streaming), Anthropic\'s 529, an error mid-stream', async () => {
  v.setProjectQuota('ann-second', '*', 1);
  const path = base('ann-second', 'anthropic', 'claude-opus-4-8', 'rawPredict');
  assert.equal((await call(path, claude)).status, 200);
  const limited = await call(path, claude);
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error.status, 'RESOURCE_EXHAUSTED');
  assert.match(limited.json.error.message, /base model: anthropic-claude-opus-4-8/);
  const streamed = await call(base('ann-second', 'anthropic', 'claude-opus-4-8', 'streamRawPredict'), { ...claude, stream: true });
  assert.equal(streamed.status, 429);
  assert.ok(Array.isArray(streamed.json) && streamed.json[0].error.code === 429);
  assert.equal((await call(base('ann-vertex', 'anthropic', 'claude-opus-4-8', 'rawPredict'), claude)).status, 200, 'the other project is not limited');
  assert.equal(v.servedByProject.get('ann-second'), 1);

  v.failNext('overloaded', { project: 'ann-vertex' });
  const over = await call(base('ann-vertex', 'anthropic', SONNET, 'rawPredict'), claude);
  assert.equal(over.status, 529);
  assert.equal(over.json.error.type, 'overloaded_error');

  v.failNext('error_mid_stream', { afterEvents: 3 });
  const mid = await call(base('ann-vertex', 'anthropic', SONNET, 'streamRawPredict'), { ...claude, stream: true });
  assert.equal(mid.status, 200);
  assert.match(mid.text, /^event: message_start\n/);
  assert.match(mid.text, /event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error"/);
  assert.doesNotMatch(mid.text, /message_stop/);
});

test('publisher google: role required on every content, Gemini answers from the inner stand-in, countTokens in Vertex\'s shape', async () => {
  const path = base('ann-vertex', 'google', 'gemini-2.5-flash', 'generateContent');
  const noRole = await call(path, { contents: [{ parts: [{ text: 'hi' }] }] });
  assert.equal(noRole.status, 400);
  assert.equal(noRole.json.error.status, 'INVALID_ARGUMENT');
  assert.match(noRole.json.error.message, /Please use a valid role: user, model/);
  v.google.script({ parts: [{ text: 'Hello from Gemini on Vertex' }] });
  const ok = await call(path, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], labels: { team: 'a' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.candidates[0].content.parts[0].text, 'Hello from Gemini on Vertex');
  const sse = await fetch(v.url + base('ann-vertex', 'google', 'gemini-2.5-flash', 'streamGenerateContent') + '?alt=sse', {
    method: 'POST',
    headers: { authorization: 'Bearer tok-ann', 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'stream please' }] }] }),
  });
  assert.equal(sse.status, 200);
  assert.match(await sse.text(), /^data: \{"candidates"/);
  const counted = await call(base('ann-vertex', 'google', 'gemini-2.5-flash', 'countTokens'), { contents: [{ role: 'user', parts: [{ text: 'count me' }] }] });
  assert.equal(counted.status, 200);
  assert.ok(counted.json.totalTokens > 0 && counted.json.totalBillableCharacters > 0);
  v.setProjectQuota('ann-vertex', 'gemini-2.5-pro', 0);
  const limited = await call(base('ann-vertex', 'google', 'gemini-2.5-pro', 'generateContent'), { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
  assert.equal(limited.status, 429);
  assert.match(limited.json.error.message, /^Resource exhausted/);
});

test('without an external directory: tokens and projects added on the stand-in', async () => {
  const own = await startVertexUpstream();
  try {
    own.addToken('t1', 'cy@example.com');
    own.addProject('cy-proj', { users: ['cy@example.com'] });
    own.addProject('cy-off', { users: ['cy@example.com'], vertex: false });
    const post = (project: string) =>
      fetch(`${own.url}${base(project, 'anthropic', SONNET, 'rawPredict')}`, { method: 'POST', headers: { authorization: 'Bearer t1' }, body: JSON.stringify(claude) });
    assert.equal((await post('cy-proj')).status, 200);
    assert.equal((await post('cy-off')).status, 403);
    assert.equal((await post('someone-else')).status, 403);
    own.revokeToken('t1');
    assert.equal((await post('cy-proj')).status, 401);
  } finally {
    await own.close();
  }
});
