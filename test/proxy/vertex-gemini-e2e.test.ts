// Gemini on Vertex AI end to end (SPEC section 8, issue 14 item 4): the real
// gateway, the OIDC stand-in, the Resource Manager / Service Usage stand-in,
// the Gemini API stand-in metering per project and the Vertex AI stand-in,
// driven by @google/genai (Gemini door) and the openai SDK (Chat Completions).
// Accounts whose project has Vertex AI add capacity when their Gemini API
// lanes cool down; Vertex gets `role` on every content and the bearer token only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { startStack, type Stack } from '../support/stack.ts';
import { startVertexUpstream, type VertexUpstream } from '../support/vertex-upstream.ts';
import { runCli } from '../support/run-cli.ts';
import { eventually } from '../support/eventually.ts';

const GL = 'generativelanguage.googleapis.com';
const AI = 'aiplatform.googleapis.com';
const FLASH = 'gemini-2.5-flash';
let stack: Stack;
let vertex: VertexUpstream;

before(async () => {
  vertex = await startVertexUpstream({
    tokenInfo: (t) => stack.issuer.tokenInfo(t),
    directory: { canUse: (e, p) => stack.cloud!.canUse(e, p), isEnabled: (p, s) => stack.cloud!.isEnabled(p, s) },
  });
  stack = await startStack({ cloud: {}, env: { GRANTPOOL_VERTEX_BASE_URL: vertex.url } });
});
after(async () => {
  await stack?.close();
  await vertex?.close();
});

/** Adds `email` with a project of its own (both APIs enabled unless `vertex: false`) and waits until the gateway has its lanes. */
async function addWithProject(email: string, project: string, opts: { vertex?: boolean } = {}): Promise<void> {
  stack.cloud!.addProject(project, { members: { [email]: 'owner' }, enabled: opts.vertex === false ? [GL] : [GL, AI], billing: true });
  stack.issuer.addUser({ email });
  const r = await stack.addAccount(email);
  assert.equal(r.status, 200, r.html);
  await eventually(`${email} on ${project} in the gateway`, async () => {
    const { body } = await stack.api('GET', '/api/accounts');
    const a = body.accounts.find((x: any) => x.email === email);
    return a?.project_id === project && a.project?.vertex_ai === (opts.vertex === false ? 'disabled' : 'enabled');
  }, 8000);
}

const genai = () => new GoogleGenAI({ apiKey: 'unused-on-loopback', httpOptions: { baseUrl: stack.gateway.url } });
const openai = () => new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
const lastEntries = async (n: number) => (await stack.api('GET', `/api/requests?limit=${n}`)).body.requests as any[];

test('Gemini door (@google/genai): served by the Gemini API first; when its lane is exhausted, by the same account on Vertex AI', async () => {
  await addWithProject('ann@example.com', 'ann-proj');
  const ai = genai();
  const first = await ai.models.generateContent({ model: FLASH, contents: 'hello' });
  assert.ok(first.text);
  assert.equal(vertex.requests.length, 0, 'the Gemini API is preferred');
  let [entry] = await lastEntries(1);
  assert.equal(entry.service, 'gemini_api');
  assert.equal(entry.lane, 'gemini_api:ann-proj');

  stack.upstream.setProjectQuota('ann-proj', FLASH, 0);
  const second = await ai.models.generateContent({ model: FLASH, contents: 'hello again' });
  assert.ok(second.text, 'answered through Vertex AI');
  const v = vertex.requests.at(-1)!;
  assert.equal(v.status, 200);
  assert.equal(v.path, `/v1/projects/ann-proj/locations/global/publishers/google/models/${FLASH}:generateContent`);
  assert.equal(v.email, 'ann@example.com');
  assert.equal(v.userProject, null, 'no x-goog-user-project to Vertex AI');
  assert.equal(v.sentApiKey, false);
  [entry] = await lastEntries(1);
  assert.equal(entry.service, 'vertex');
  assert.equal(entry.lane, 'vertex:ann-proj');
  assert.equal(entry.retries, 1, 'one failover, from the Gemini API lane to the Vertex lane');

  // the Gemini API lane is cooling now: the next request goes straight to Vertex AI
  const gBefore = stack.upstream.requests.length;
  const stream = await ai.models.generateContentStream({ model: FLASH, contents: 'stream please' });
  let text = '';
  for await (const chunk of stream) text += chunk.text ?? '';
  assert.ok(text);
  assert.equal(stack.upstream.requests.length, gBefore, 'no call to the cooling Gemini API lane');
  const s = vertex.requests.at(-1)!;
  assert.equal(s.action, 'streamGenerateContent');
  assert.equal(s.query.alt, 'sse');

  // countTokens on Vertex takes {contents, ...} at the top level
  const counted = await ai.models.countTokens({ model: FLASH, contents: 'count these words' });
  assert.ok((counted.totalTokens ?? 0) > 0);
  const c = vertex.requests.at(-1)!;
  assert.equal(c.action, 'countTokens');
  assert.equal(c.status, 200);
  assert.equal((c.body as any).generateContentRequest, undefined);
  assert.ok(Array.isArray((c.body as any).contents));
});

test('Gemini door: a native body without `role` (which the Gemini API accepts) gets role "user" on Vertex AI; generateContentRequest countTokens is unwrapped', async () => {
  // ann-proj's Gemini API lane is still exhausted (previous test)
  const post = (action: string, body: unknown) =>
    fetch(`${stack.gateway.url}/v1beta/models/${FLASH}:${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const r = await post('generateContent', { contents: [{ parts: [{ text: 'no role here' }] }], systemInstruction: { parts: [{ text: 'be brief' }] } });
  assert.equal(r.status, 200, await r.clone().text());
  const sent = vertex.requests.at(-1)!.body as any;
  assert.deepEqual(sent.contents, [{ role: 'user', parts: [{ text: 'no role here' }] }]);
  assert.deepEqual(sent.systemInstruction, { parts: [{ text: 'be brief' }] });

  const ct = await post('countTokens', { generateContentRequest: { model: `models/${FLASH}`, contents: [{ parts: [{ text: 'count' }] }], generationConfig: { temperature: 0.1 } } });
  assert.equal(ct.status, 200, await ct.clone().text());
  assert.ok(((await ct.json()) as any).totalTokens > 0);
  assert.deepEqual(vertex.requests.at(-1)!.body, { contents: [{ role: 'user', parts: [{ text: 'count' }] }], generationConfig: { temperature: 0.1 } });

  // a JSON-array stream (no alt=sse) stays a JSON array on Vertex AI
  const arr = await post('streamGenerateContent', { contents: [{ role: 'user', parts: [{ text: 'array' }] }] });
  assert.equal(arr.status, 200);
  const parsed = JSON.parse(await arr.text());
  assert.ok(Array.isArray(parsed) && parsed.length > 0);
  assert.equal(vertex.requests.at(-1)!.query.alt, undefined);
});

test('Chat Completions (openai SDK): Vertex lanes add capacity; a 429 on one Vertex lane fails over to another project\'s Vertex lane', async () => {
  await addWithProject('bob@example.com', 'bob-proj');
  stack.upstream.setProjectQuota('bob-proj', FLASH, 0);
  const client = openai();
  // warm: both Gemini API lanes are exhausted for flash (ann's from before, bob's learns it now)
  const r1 = await client.chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: 'one' }] });
  assert.ok(r1.choices[0]!.message.content);
  vertex.setProjectQuota('ann-proj', FLASH, 0);
  vertex.clearRequests();
  const served: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await client.chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: `q ${i}` }] });
    assert.ok(r.choices[0]!.message.content);
    served.push((await lastEntries(1))[0].lane);
  }
  assert.deepEqual(served, ['vertex:bob-proj', 'vertex:bob-proj', 'vertex:bob-proj', 'vertex:bob-proj']);
  const limited = vertex.requests.filter((q) => q.status === 429);
  assert.ok(limited.length <= 1 && limited.every((q) => q.project === 'ann-proj'), 'ann\'s Vertex lane cooled after one 429');
  // streaming through Vertex, usage included
  const stream = await client.chat.completions.create({ model: FLASH, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream' }] });
  let text = '';
  let usage: any = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(text);
  assert.ok(usage?.prompt_tokens > 0);
  const v = vertex.requests.at(-1)!;
  assert.equal(v.action, 'streamGenerateContent');
  assert.ok((v.body as any).contents.every((c: any) => c.role === 'user' || c.role === 'model'));
  // the accounts show their lanes (the Gemini API lane cooling for flash, the Vertex lane serving)
  const { body } = await stack.api('GET', '/api/accounts');
  const bob = body.accounts.find((a: any) => a.email === 'bob@example.com');
  assert.deepEqual(bob.lanes.map((l: any) => [l.key, l.service]), [['gemini_api:bob-proj', 'gemini_api'], ['vertex:bob-proj', 'vertex']]);
  const [g, vl] = bob.lanes;
  assert.equal(g.state.state, 'cooling_down');
  assert.equal(g.state.model, FLASH);
  assert.equal(vl.state.state, 'active');
  const ann = body.accounts.find((a: any) => a.email === 'ann@example.com');
  assert.equal(ann.lanes[1].state.state, 'cooling_down', "ann's Vertex lane is cooling too");
  // and `grantpool accounts list` shows both lanes of each account with their states
  const list = await runCli(['accounts', 'list'], stack.env);
  assert.equal(list.code, 0, list.err);
  const bobLine = list.out.split('\n').find((l) => l.startsWith('bob@example.com'))!;
  assert.match(bobLine, new RegExp(`Gemini API cooling \\(${FLASH} until \\d\\d:\\d\\dZ\\), Vertex AI ok`));
  assert.match(list.out, /SERVICES/);
});

test('a Vertex 401 refreshes the token and retries on the Vertex lane', async () => {
  vertex.clearRequests();
  vertex.failNext('unauthorized', { project: 'bob-proj' });
  const before = stack.issuer.counters.refreshRequests;
  const r = await openai().chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: 'after a 401' }] });
  assert.ok(r.choices[0]!.message.content);
  assert.equal(stack.issuer.counters.refreshRequests, before + 1);
  const tries = vertex.requests.filter((q) => q.project === 'bob-proj');
  assert.deepEqual(tries.map((q) => q.status), [401, 200]);
  assert.notEqual(tries[0]!.token, tries[1]!.token, 'retried with the fresh token');
});

test('Vertex AI disabled in a project (403 SERVICE_DISABLED) takes only that account\'s Vertex lane away; its Gemini API lane still serves', async () => {
  await addWithProject('cat@example.com', 'cat-proj');
  stack.cloud!.project('cat-proj')!.enabled.delete(AI);
  stack.upstream.setProjectQuota('cat-proj', FLASH, 0);
  vertex.clearRequests();
  // every Gemini API lane is exhausted for flash; cat's Vertex lane answers 403, bob's serves
  for (let i = 0; i < 3; i++) {
    const r = await openai().chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: `c ${i}` }] });
    assert.ok(r.choices[0]!.message.content);
  }
  const denied = vertex.requests.filter((q) => q.project === 'cat-proj');
  assert.equal(denied.length, 1, 'tried once, then left alone');
  assert.equal(denied[0]!.status, 403);
  const file = await eventually('the account file to record it', async () => {
    const a = await stack.accountFile('cat@example.com');
    return a?.project?.vertex_ai === 'disabled' ? a : null;
  }, 8000);
  assert.match(file.project.vertex_ai_reason, /SERVICE_DISABLED for Vertex AI in project cat-proj/);
  assert.match(file.project.vertex_ai_reason, /--enable-vertex cat-proj/);
  assert.equal(file.proxy_disabled, false, 'the account is not taken out of the proxy');
  // its Gemini API lane serves another model
  const pro = await openai().chat.completions.create({ model: 'gemini-2.5-pro', messages: [{ role: 'user', content: 'pro' }] });
  assert.ok(pro.choices[0]!.message.content);
});

test('invalid_grant on a Vertex lane disables the account as before', async () => {
  stack.issuer.revokeUser('bob@example.com');
  vertex.clearRequests();
  const r = await openai().chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: 'revoked' }] }).catch((e) => e);
  // ann's Vertex lane may still be cooling; whatever answered, bob is out
  assert.ok(r);
  const file = await eventually('bob disabled', async () => {
    const a = await stack.accountFile('bob@example.com');
    return a?.disabled ? a : null;
  }, 8000);
  assert.match(file.disabled_reason, /invalid_grant/);
  assert.ok(vertex.requests.some((q) => q.project === 'bob-proj' && q.status === 401));
});

test('with gemini_services ["gemini_api"] Vertex AI is never used', async () => {
  // a fresh gateway on the same data directory with Vertex AI off for Gemini
  const { startGateway } = await import('../../src/app/gateway.ts');
  const { silentLogger } = await import('../../src/log/logger.ts');
  const { writeFile, readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const cfgPath = join(stack.dataDir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  await writeFile(cfgPath, JSON.stringify({ ...cfg, gemini_services: ['gemini_api'] }));
  const env = { ...stack.env, GRANTPOOL_PORT: '0' };
  const gw = await startGateway({ env, logger: silentLogger() });
  try {
    vertex.clearRequests();
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: 'gemini only' }] }).catch((e) => e);
    assert.equal(r.status, 429, 'every Gemini API lane is exhausted for flash, and Vertex AI is not asked');
    assert.equal(vertex.requests.length, 0);
  } finally {
    await gw.close();
    await writeFile(cfgPath, JSON.stringify(cfg));
  }
});
