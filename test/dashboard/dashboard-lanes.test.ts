// Services on the dashboard (issue 14 item 5), in headless Chromium with the
// real gateway and the Gemini API and Vertex AI stand-ins: each account row
// shows its lanes (Gemini API, Vertex AI) and their states, and the request
// log says which service and lane served each request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';
import { startVertexUpstream, type VertexUpstream } from '../support/vertex-upstream.ts';
import { browserSkipReason, launchBrowser, loginDashboard, screenshot, type BrowserSession } from '../support/dashboard-browser.ts';
import { eventually } from '../support/eventually.ts';

const skip = browserSkipReason();
let stack: Stack;
let vertex: VertexUpstream;
let browser: BrowserSession;
const problems: string[] = [];

before(async () => {
  if (skip) return;
  vertex = await startVertexUpstream({
    tokenInfo: (t) => stack.issuer.tokenInfo(t),
    directory: { canUse: (e, p) => stack.cloud!.canUse(e, p), isEnabled: (p, s) => stack.cloud!.isEnabled(p, s) },
  });
  stack = await startStack({ cloud: {}, env: { GRANTPOOL_VERTEX_BASE_URL: vertex.url } });
  browser = await launchBrowser({ timeoutMs: 10_000, pageErrors: problems });
});
after(async () => {
  await browser?.close();
  await stack?.close();
  await vertex?.close();
});

test('account rows show each lane and its state; the request log names the service and lane', { skip: skip ?? false, timeout: 90_000 }, async () => {
  stack.cloud!.addProject('dora-proj', { members: { 'dora@example.com': 'owner' }, enabled: ['generativelanguage.googleapis.com', 'aiplatform.googleapis.com'], billing: true });
  stack.issuer.addUser({ email: 'dora@example.com' });
  assert.equal((await stack.addAccount('dora@example.com')).status, 200);
  // the running gateway has both lanes of the account (discovery wrote the project, the pool took it in)
  const lanesNow = async () => (await stack.api('GET', '/api/accounts')).body.accounts.find((a: any) => a.email === 'dora@example.com')?.lanes ?? [];
  await eventually('the gateway to get a Vertex lane for the account', async () => (await lanesNow()).length === 2, 10_000);
  stack.upstream.setProjectQuota('dora-proj', 'gemini-2.5-flash', 0);
  const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(r.choices[0]!.message.content);

  const { page } = browser;
  await loginDashboard(page, stack.gateway.url, stack.env.GRANTPOOL_ADMIN_TOKEN!);
  const row = page.locator('tr[data-account-id]', { hasText: 'dora@example.com' });
  const lanes = row.getByTestId('lanes');
  await lanes.waitFor();
  const gemini = lanes.locator('li[data-service="gemini_api"]');
  const vertexLane = lanes.locator('li[data-service="vertex"]');
  assert.equal(await gemini.getAttribute('data-lane-state'), 'cooling_down');
  assert.match(await gemini.innerText(), /Gemini API: cooling for gemini-2\.5-flash until/);
  assert.equal(await vertexLane.getAttribute('data-lane-state'), 'active');
  assert.match(await vertexLane.innerText(), /Vertex AI: ready/);
  await screenshot(page, 'dashboard-lanes-accounts');

  await page.goto(`${stack.gateway.url}/#requests`);
  const served = page.getByTestId('request-lane').first();
  await served.waitFor();
  assert.equal(await served.innerText(), 'Vertex AI · vertex:dora-proj');
  await screenshot(page, 'dashboard-lanes-requests');
  assert.deepEqual(problems, []);
});
