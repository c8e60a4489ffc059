// Issue 13 end to end: every account brings its own quota. The real gateway,
// the OIDC stand-in, the Resource Manager / Service Usage stand-in and a
// Gemini stand-in that meters per consumer project as Google does, driven by
// the official SDKs and the `grantpool` CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { startStack, type Stack } from '../support/stack.ts';
import { runCli } from '../support/run-cli.ts';
import { eventually } from '../support/eventually.ts';

const GL = 'generativelanguage.googleapis.com';
let stack: Stack;

before(async () => {
  stack = await startStack({ cloud: { maxPageSize: 2, pollsToEnable: 3 } });
});
after(async () => {
  await stack?.close();
});

async function add(email: string): Promise<any> {
  stack.issuer.addUser({ email });
  const r = await stack.addAccount(email);
  assert.equal(r.status, 200, r.html);
  assert.match(r.html, /data-outcome="(added|updated|reenabled)"/);
  return eventually(`${email} in the account files`, () => stack.accountFile(email), 8000);
}

/** Waits until discovery has written its outcome (a project or the reason there is none). */
function discovered(email: string): Promise<any> {
  return eventually(`discovery for ${email}`, async () => {
    const a = await stack.accountFile(email);
    return a && (a.project_id || a.project_error) ? a : null;
  }, 8000);
}

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return runCli(args, stack.env);
}

const openai = () => new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
const anthropic = () => new Anthropic({ baseURL: stack.gateway.url, apiKey: 'unused-on-loopback', maxRetries: 0 });

test('discovery on add: the first listed project with the Gemini API enabled (on the second page) becomes the account\'s project, and its calls carry it', async () => {
  const cloud = stack.cloud!;
  cloud.addProject('ann-old', { members: { 'ann@example.com': 'viewer' } });
  cloud.addProject('ann-test', { members: { 'ann@example.com': 'owner' }, enabled: ['aiplatform.googleapis.com'], billing: true });
  cloud.addProject('ann-main', { members: { 'ann@example.com': 'owner' }, enabled: [GL] });
  cloud.addProject('ann-later', { members: { 'ann@example.com': 'owner' }, enabled: [GL] });
  cloud.addProject('ann-gone', { members: { 'ann@example.com': 'owner' }, enabled: [GL], state: 'DELETE_REQUESTED' });
  await add('ann@example.com');
  const a = await discovered('ann@example.com');
  assert.equal(a.project_id, 'ann-main');
  assert.equal(a.project.source, 'discovered');
  assert.equal(a.project.gemini_api, 'enabled');
  assert.equal(a.project.vertex_ai, 'disabled');
  assert.ok(Math.abs(a.project.checked_at - Date.now() / 1000) < 60);
  assert.equal(a.project_error, null);
  await eventually('the log line', async () => stack.logs.messages().includes('Account ann@example.com draws on project ann-main'), 8000);
  const searches = cloud.calls.filter((c) => c.path === '/v3/projects:search' && c.email === 'ann@example.com');
  assert.ok(searches.length >= 2, 'every page of projects:search was read');

  stack.upstream.clearRequests();
  const r = await openai().chat.completions.create(
    { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hello' }] },
    { headers: { 'X-Grantpool-Account': 'ann@example.com' } },
  );
  assert.ok(r.choices[0]!.message.content);
  const sent = stack.upstream.requests.filter((q) => q.action === 'generateContent');
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.userProject, 'ann-main');
  assert.equal(sent[0]!.consumerProject, 'ann-main', 'charged to the account\'s own project');

  // The API lists the projects with both API states.
  const { body } = await stack.api('GET', `/api/accounts/${a.id}/projects`);
  assert.equal(body.project_id, 'ann-main');
  const states = Object.fromEntries(body.projects.map((p: any) => [p.project_id, [p.gemini_api, p.vertex_ai]]));
  assert.deepEqual(states, {
    'ann-old': ['disabled', 'disabled'],
    'ann-test': ['disabled', 'enabled'],
    'ann-main': ['enabled', 'disabled'],
    'ann-later': ['enabled', 'disabled'],
  });
});

test('discovery failing never fails an add: the reason (enable the APIs in the OAuth client\'s project) is on the account; re-discovery on demand finds the project', async () => {
  const cloud = stack.cloud!;
  cloud.addProject('nick-proj', { members: { 'nick@example.com': 'owner' }, enabled: [GL] });
  cloud.setClientApisEnabled(false);
  try {
    await add('nick@example.com');
    const a = await discovered('nick@example.com');
    assert.equal(a.project_id, null);
    assert.match(a.project_error, /Cloud Resource Manager API has not been used in project grantpool-standin/);
    assert.match(a.project_error, /project that owns the OAuth client .* must have the Cloud Resource Manager API enabled: open https:\/\/console\.developers\.google\.com\/apis\/api\/cloudresourcemanager\.googleapis\.com\/overview\?project=grantpool-standin/);
    const { body } = await stack.api('GET', `/api/accounts/${a.id}`);
    assert.equal(body.account.state.state, 'active', 'the account serves (on the OAuth client\'s project)');
    assert.equal(body.account.project_error, a.project_error, 'the API shows the reason');
    const r = await openai().chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'X-Grantpool-Account': 'nick@example.com' } });
    assert.ok(r.choices[0]!.message.content);
  } finally {
    cloud.setClientApisEnabled(true);
  }
  const id = (await stack.accountFile('nick@example.com')).id;
  const { body } = await stack.api('POST', `/api/accounts/${id}/project/discover`);
  assert.equal(body.account.project_id, 'nick-proj');
  assert.equal(body.account.project_error, null);
  assert.equal((await stack.accountFile('nick@example.com')).project.source, 'discovered');
});

test('`accounts project --enable P` follows the operation with a progress line, sets the project, and the account serves from it', async () => {
  stack.cloud!.addProject('bob-proj', { members: { 'bob@example.com': 'owner' } });
  await add('bob@example.com');
  const a = await discovered('bob@example.com');
  assert.equal(a.project_id, null);
  assert.match(a.project_error, /none of the account's 1 project\(s\) has the Generative Language API enabled .*`grantpool accounts project bob@example\.com --enable bob-proj`/);

  const list = await cli(['accounts', 'project', 'bob@example.com']);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /bob-proj\s+bob-proj\s+disabled\s+disabled/);
  assert.match(list.out, /grantpool accounts project bob@example\.com --enable bob-proj/);

  const r = await cli(['accounts', 'project', 'bob@example.com', '--enable', 'bob-proj']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^Enabling generativelanguage\.googleapis\.com in bob-proj … \d+ s \(operation operations\/acf\.p2-\d+-[0-9a-f]+\)$/m);
  assert.match(r.out, /, poll 2\)$/m, 'a progress line per poll');
  assert.match(r.out, /^Enabled generativelanguage\.googleapis\.com in bob-proj \(\d+ s, 3 polls\)$/m);
  assert.match(r.out, /bob@example\.com draws on project bob-proj \(manual, .*Gemini API enabled/);
  const file = await stack.accountFile('bob@example.com');
  assert.equal(file.project_id, 'bob-proj');
  assert.equal(file.project.source, 'manual');
  assert.equal(file.project_error, null);

  await eventually('the gateway to see the project', async () => (await stack.api('GET', `/api/accounts/${file.id}`)).body.account.project_id === 'bob-proj', 8000);
  stack.upstream.clearRequests();
  const msg = await anthropic().messages.create(
    { model: 'claude-sonnet-4-6', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Grantpool-Account': 'bob@example.com' } },
  );
  assert.equal(msg.type, 'message');
  assert.equal(stack.upstream.requests.at(-1)!.consumerProject, 'bob-proj');
});

test('choosing a project that is not ready is refused with the reason and the fix; enabling Vertex AI without billing names billing', async () => {
  stack.cloud!.addProject('bob-empty', { members: { 'bob@example.com': 'owner' } });
  const id = (await stack.accountFile('bob@example.com')).id;
  const use = await stack.api('PUT', `/api/accounts/${id}/project`, { project_id: 'bob-empty' }, { allowError: true });
  assert.equal(use.status, 409);
  assert.equal(use.body.error.code, 'project_not_ready');
  assert.match(use.body.error.message, /the Generative Language API is not enabled in bob-empty/);
  assert.match(use.body.error.fix, /--enable bob-empty/);
  const vertex = await stack.api('PUT', `/api/accounts/${id}/project`, { project_id: 'bob-empty', vertex: true }, { allowError: true });
  assert.equal(vertex.status, 409);
  assert.equal(vertex.body.error.code, 'project_billing');
  assert.match(vertex.body.error.message, /Billing must be enabled for activation of service 'aiplatform\.googleapis\.com'/);
  assert.match(vertex.body.error.fix, /billing\/linkedaccount\?project=bob-empty/);
  const other = await stack.api('PUT', `/api/accounts/${id}/project`, { project_id: 'ann-main', enable: true }, { allowError: true });
  assert.equal(other.status, 403, 'bob may not enable an API in a project that is not his');
  assert.equal(other.body.error.code, 'project_permission');
  assert.match(other.body.error.fix, /iam-admin\/iam\?project=ann-main/);
  assert.equal((await stack.accountFile('bob@example.com')).project_id, 'bob-proj', 'unchanged');
});

test('USER_PROJECT_DENIED takes the account out with the project, Google\'s message and the fix; the request fails over; fixing the project puts it back', async () => {
  await add('carl@example.com');
  const c = await discovered('carl@example.com');
  // carl is pointed at a project he may not use (as after a colleague removed him from it)
  await stack.gateway.store.update(c.id, (a) => ({ ...a, project_id: 'ann-main', project_error: null }));
  await eventually('the gateway to see carl\'s project', async () => (await stack.api('GET', `/api/accounts/${c.id}`)).body.account.project_id === 'ann-main', 8000);
  const client = anthropic();
  for (let i = 0; i < 8; i++) {
    const r = await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, messages: [{ role: 'user', content: `hello ${i}` }] });
    assert.equal(r.type, 'message', 'every request is served');
  }
  const denied = stack.upstream.requests.filter((q) => q.status === 403 && q.userProject === 'ann-main');
  assert.ok(denied.length >= 1, 'carl was tried and got USER_PROJECT_DENIED');
  const file = await eventually('carl taken out', async () => {
    const f = await stack.accountFile('carl@example.com');
    return f.proxy_disabled ? f : null;
  }, 8000);
  assert.match(file.proxy_disabled_reason, /^USER_PROJECT_DENIED for project ann-main: Caller does not have required permission to use project ann-main\./);
  assert.match(file.proxy_disabled_reason, /https:\/\/console\.cloud\.google\.com\/iam-admin\/iam\?project=ann-main/);
  assert.match(file.proxy_disabled_reason, /`grantpool accounts project carl@example\.com`/);

  stack.cloud!.project('ann-main')!.members.set('carl@example.com', 'consumer');
  const r = await cli(['accounts', 'project', 'carl@example.com', '--use', 'ann-main']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /carl@example\.com is back in the proxy/);
  const back = await stack.accountFile('carl@example.com');
  assert.equal(back.proxy_disabled, false);
  assert.equal(back.proxy_disabled_reason, null);
  assert.equal(back.project.source, 'manual');
});

test('SERVICE_DISABLED for the account\'s project takes it out with `--enable P` as the fix', async () => {
  stack.cloud!.addProject('dora-proj', { members: { 'dora@example.com': 'owner' }, enabled: [GL] });
  await add('dora@example.com');
  const d = await discovered('dora@example.com');
  assert.equal(d.project_id, 'dora-proj');
  // The file is written before the gateway's pool hears of the change: a request sent earlier
  // would still draw on the OAuth client's project (and succeed).
  await eventually('the gateway to see dora\'s project', async () => (await stack.api('GET', `/api/accounts/${d.id}`)).body.account.project_id === 'dora-proj', 8000);
  stack.cloud!.project('dora-proj')!.enabled.delete(GL); // someone turned the API off
  let enabled = false;
  try {
    const genai = new GoogleGenAI({ apiKey: 'unused', httpOptions: { baseUrl: stack.gateway.url, headers: { 'X-Grantpool-Account': 'dora@example.com' } } });
    await assert.rejects(genai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }));
    const file = await eventually('dora taken out', async () => {
      const f = await stack.accountFile('dora@example.com');
      return f.proxy_disabled ? f : null;
    }, 8000);
    assert.match(file.proxy_disabled_reason, /^SERVICE_DISABLED for project dora-proj: Generative Language API has not been used in project dora-proj/);
    assert.match(file.proxy_disabled_reason, /`grantpool accounts project dora@example\.com --enable dora-proj`/);
    const r = await cli(['accounts', 'project', 'dora@example.com', '--enable', 'dora-proj']);
    assert.equal(r.code, 0, r.err);
    enabled = true;
    assert.equal((await stack.accountFile('dora@example.com')).proxy_disabled, false);
  } finally {
    // Whatever failed above, the tests after this one need dora serving (or out of the way).
    if (!enabled) await cli(['accounts', 'project', 'dora@example.com', '--enable', 'dora-proj']);
  }
});

test('Claude-Code-sized max_tokens and thinking budgets succeed on every door (clamped to the model, and the request log says so)', async () => {
  stack.upstream.clearRequests();
  // Claude Code streams (the SDK refuses a non-streaming request this large).
  const msg = await anthropic()
    .messages.stream({
      model: 'claude-sonnet-4-6',
      max_tokens: 64000,
      thinking: { type: 'enabled', budget_tokens: 31999 },
      messages: [{ role: 'user', content: 'think hard' }],
    })
    .finalMessage();
  assert.equal(msg.type, 'message');
  const chat = await openai().chat.completions.create({ model: 'gemini-2.5-pro', max_tokens: 128000, messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(chat.choices[0]!.message.content);
  const genai = new GoogleGenAI({ apiKey: 'unused', httpOptions: { baseUrl: stack.gateway.url } });
  const g = await genai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi', config: { maxOutputTokens: 128000, thinkingConfig: { thinkingBudget: 31999 } } });
  assert.ok(g.text);
  const sent = stack.upstream.requests.filter((q) => q.action === 'generateContent' || q.action === 'streamGenerateContent').map((q) => (q.body as any).generationConfig);
  assert.equal(sent.length, 3);
  assert.deepEqual(sent.map((gc) => [gc.maxOutputTokens, gc.thinkingConfig?.thinkingBudget]), [
    [64000, 24576],
    [65536, undefined],
    [65536, 24576],
  ]);
  const { body } = await stack.api('GET', '/api/requests?limit=3');
  const notes = body.requests.map((r: any) => r.note ?? '');
  assert.ok(notes.some((n: string) => /thinkingBudget 31999 -> 24576 \(gemini-2\.5-flash accepts/.test(n)), notes.join(' | '));
  assert.ok(notes.some((n: string) => /maxOutputTokens 128000 -> 65536 \(the outputTokenLimit of gemini-2\.5-pro\)/.test(n)), notes.join(' | '));
});

test('exhausting one project fails over to an account on another project, and an account on the exhausted project is not tried', async () => {
  stack.cloud!.addProject('eve-proj', { members: { 'eve@example.com': 'owner', 'fay@example.com': 'owner' }, enabled: [GL] });
  for (const email of ['eve@example.com', 'fay@example.com']) {
    await add(email);
    assert.equal((await discovered(email)).project_id, 'eve-proj');
  }
  await eventually('the gateway to see both projects', async () => {
    const { body } = await stack.api('GET', '/api/accounts');
    return body.accounts.filter((a: any) => a.project_id === 'eve-proj').length === 2;
  }, 8000);
  stack.upstream.setProjectQuota('eve-proj', 'gemini-2.5-flash-lite', 0);
  stack.upstream.clearRequests();
  const client = openai();
  for (let i = 0; i < 8; i++) {
    const r = await client.chat.completions.create({ model: 'gemini-2.5-flash-lite', messages: [{ role: 'user', content: `q ${i}` }] });
    assert.ok(r.choices[0]!.message.content, 'served by an account on another project');
  }
  const limited = stack.upstream.requests.filter((q) => q.status === 429);
  assert.equal(limited.length, 1, 'one 429 cools the project (the lane): its other account is not tried');
  assert.equal(limited[0]!.consumerProject, 'eve-proj');
  const served = stack.upstream.requests.filter((q) => q.status === 200);
  assert.equal(served.length, 8);
  assert.ok(served.every((q) => q.consumerProject !== 'eve-proj'));
  const { body } = await stack.api('GET', '/api/accounts');
  for (const email of ['eve@example.com', 'fay@example.com']) {
    const a = body.accounts.find((x: any) => x.email === email);
    assert.equal(a.state.state, 'cooling_down', `${email} cools with its lane`);
  }
});
