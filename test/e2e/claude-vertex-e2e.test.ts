// Claude stays Claude, end to end: the real gateway and pool, accounts added
// through the OIDC stand-in's consent, their projects discovered with the
// Resource Manager / Service Usage stand-in (Vertex AI enabled there), and the
// Vertex AI stand-in checking every token by introspection and every project
// against the same directory. Driven with the official Anthropic SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, type Stack } from '../support/stack.ts';
import { startVertexUpstream, type VertexUpstream } from '../support/vertex-upstream.ts';
import { eventually } from '../support/eventually.ts';

const GL = 'generativelanguage.googleapis.com';
const AI = 'aiplatform.googleapis.com';
let stack: Stack;
let vertex: VertexUpstream;

before(async () => {
  // The Vertex stand-in asks the stack's issuer and project directory, which exist once the stack has started.
  let ref: Stack | null = null;
  vertex = await startVertexUpstream({
    tokenInfo: async (t) => (ref ? ref.issuer.tokenInfo(t) : null),
    directory: { canUse: (e, p) => ref?.cloud?.canUse(e, p) ?? false, isEnabled: (p, s) => ref?.cloud?.isEnabled(p, s) ?? false },
  });
  stack = await startStack({ cloud: {}, env: { GRANTPOOL_VERTEX_BASE_URL: vertex.url } });
  ref = stack;
});
after(async () => {
  await stack?.close();
  await vertex?.close();
});

async function addWithProject(email: string, project: string, services: string[]): Promise<any> {
  stack.cloud!.addProject(project, { members: { [email]: 'owner' }, enabled: services, billing: true });
  stack.issuer.addUser({ email });
  const r = await stack.addAccount(email);
  assert.equal(r.status, 200, r.html);
  return eventually(`discovery for ${email}`, async () => {
    const a = await stack.accountFile(email);
    return a?.project_id ? a : null;
  }, 8000);
}

const client = () => new Anthropic({ baseURL: stack.gateway.url, apiKey: 'unused-on-loopback', maxRetries: 0 });

test('without a Vertex lane a Claude model is translated to Gemini; once projects have Vertex AI, Claude answers through their lanes, 429s fail over between them', async () => {
  const gina = await addWithProject('gina@example.com', 'gina-gemini', [GL]);
  assert.equal(gina.project.vertex_ai, 'disabled');
  stack.upstream.setDefaultAnswer({ parts: [{ text: 'Gemini answers' }] });
  const translated = await client().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(translated.content[0]!.type === 'text' && translated.content[0]!.text, 'Gemini answers');
  assert.equal(vertex.requests.length, 0);

  const ann = await addWithProject('ann@example.com', 'ann-claude', [GL, AI]);
  const bob = await addWithProject('bob@example.com', 'bob-claude', [GL, AI]);
  assert.equal(ann.project.vertex_ai, 'enabled');
  assert.equal(bob.project.vertex_ai, 'enabled');
  await eventually('the pool to see the Vertex lanes', async () => {
    const list = await (await fetch(`${stack.gateway.url}/v1/models`)).json();
    return list.data?.some((m: any) => m.owned_by === 'anthropic');
  }, 8000);

  vertex.setDefaultAnswer((body) => ({ content: [{ type: 'text', text: `Claude read ${JSON.stringify((body.messages as any[]).at(-1).content)}` }] }));
  const served = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const msg = await client().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 50, messages: [{ role: 'user', content: `turn ${i}` }] });
    assert.equal(msg.content[0]!.type === 'text' && msg.content[0]!.text, `Claude read "turn ${i}"`);
    const seen = vertex.requests.at(-1)!;
    assert.equal(seen.status, 200);
    // The token belongs to the user whose project is in the URL (the stand-in checked it by introspection).
    assert.equal(seen.email, seen.project === 'ann-claude' ? 'ann@example.com' : 'bob@example.com');
    served.add(seen.project!);
  }
  assert.deepEqual([...served].sort(), ['ann-claude', 'bob-claude'], 'requests spread over both Vertex lanes');

  // The request log says which service and lane served each request.
  const { body: log } = await stack.api('GET', '/api/requests?limit=4');
  const entries = log.requests;
  assert.ok(entries.every((e: any) => e.service === 'vertex' && /^vertex:(ann|bob)-claude$/.test(e.lane) && e.model_used === 'claude-sonnet-4-6'), JSON.stringify(entries));

  // ann's project runs out of Claude quota: her lane cools down for that model, bob's serves.
  vertex.setProjectQuota('ann-claude', 'claude-sonnet-4-6', 0);
  const before = vertex.servedByProject.get('bob-claude') ?? 0;
  for (let i = 0; i < 3; i++) await client().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 50, messages: [{ role: 'user', content: `more ${i}` }] });
  assert.equal((vertex.servedByProject.get('bob-claude') ?? 0) - before, 3);
  const limited = vertex.requests.filter((r) => r.project === 'ann-claude' && r.status === 429);
  assert.equal(limited.length, 1, 'one 429, then the lane is cooling and skipped');
  // Another model still uses ann's lane.
  await client().messages.create({ model: 'claude-haiku-4-5-20251001', max_tokens: 50, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-grantpool-account': 'ann@example.com' } });
  assert.equal(vertex.requests.at(-1)!.project, 'ann-claude');
  assert.equal(vertex.requests.at(-1)!.model, 'claude-haiku-4-5@20251001');
});

test('a revoked grant: Vertex says 401, the refresh says invalid_grant, the account is disabled and the request is served through the other Vertex lane', async () => {
  vertex.setDefaultAnswer({ content: [{ type: 'text', text: 'still Claude' }] });
  stack.issuer.revokeUser('bob@example.com');
  for (let i = 0; i < 2; i++) {
    const msg = await client().messages.create({ model: 'claude-opus-5-5', max_tokens: 50, messages: [{ role: 'user', content: `after revoke ${i}` }] });
    assert.equal(msg.content[0]!.type === 'text' && msg.content[0]!.text, 'still Claude');
    assert.equal(vertex.requests.at(-1)!.project, 'ann-claude');
  }
  const bob = await eventually('bob disabled', async () => {
    const f = await stack.accountFile('bob@example.com');
    return f?.disabled ? f : null;
  }, 8000);
  assert.match(String(bob.disabled_reason ?? ''), /invalid_grant|expired or revoked/i);
  assert.ok(vertex.requests.some((r) => r.project === 'bob-claude' && r.status === 401), 'Vertex refused the revoked token');
});
