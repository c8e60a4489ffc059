// Projects on the dashboard, end to end in headless Chromium with the real
// gateway, the OIDC stand-in (Google's incremental authorization) and the
// Resource Manager / Service Usage stand-in:
// - an account added without the cloud-platform scope is offered
//   re-authorization; Google's consent asks only for the missing scope, the
//   new token carries both, and discovery then finds the account's project;
// - an account that dies with invalid_grant a week after its consent makes
//   the dashboard say the app is probably in Testing mode (banner and Setup
//   page), with how to publish it;
// - the Setup page explains what a project is for and how to make one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Page } from 'playwright-core';
import { startStack, type Stack } from '../support/stack.ts';
import { browserSkipReason, launchBrowser, loginDashboard, screenshot, type BrowserSession } from '../support/dashboard-browser.ts';
import { CLOUD_PLATFORM, RETRIEVER } from '../support/oidc-issuer.ts';
import { eventually } from '../support/eventually.ts';

const skip = browserSkipReason();
const GL = 'generativelanguage.googleapis.com';
let stack: Stack;
let browser: BrowserSession;
const problems: string[] = [];

before(async () => {
  if (skip) return;
  stack = await startStack({ cloud: {} });
  browser = await launchBrowser({ timeoutMs: 10_000, pageErrors: problems });
});
after(async () => {
  await browser?.close();
  await stack?.close();
});

const row = (page: Page, email: string) => page.locator('tr[data-account-id]', { hasText: email });

test('an account without the cloud-platform scope is offered re-authorization; Google adds only that scope and discovery then finds its project', { skip: skip ?? false, timeout: 90_000 }, async () => {
  const { page } = browser;
  stack.cloud!.addProject('paula-main', { members: { 'paula@example.com': 'owner' }, enabled: [GL] });
  stack.issuer.addUser({ email: 'paula@example.com' });
  // Paula unticked "Google Cloud data" at her first consent.
  const first = await stack.addAccount('paula@example.com', { grantScopes: ['openid', 'email', 'profile', RETRIEVER] });
  assert.match(first.html, /data-outcome="added"/);
  const before = await eventually('discovery to give up', async () => {
    const a = await stack.accountFile('paula@example.com');
    return a?.project_error ? a : null;
  }, 10_000);
  assert.equal(before.project_id, null);
  assert.match(before.project_error, /did not grant the https:\/\/www\.googleapis\.com\/auth\/cloud-platform scope/);
  assert.ok(!before.token.scope.split(' ').includes(CLOUD_PLATFORM));

  await loginDashboard(page, stack.gateway.url, stack.env.GRANTPOOL_ADMIN_TOKEN!);
  const paula = row(page, 'paula@example.com');
  const cell = paula.getByTestId('needs-cloud-scope');
  await cell.waitFor();
  assert.match(await cell.innerText(), /cannot list this account's projects: it did not allow access to Google Cloud data \(cloud-platform\)/);
  assert.equal(await paula.getByRole('button', { name: 'Choose the project of paula@example.com' }).count(), 0, 'choosing a project cannot work yet');
  await screenshot(page, 'dashboard-projects-needs-scope');

  const popupPromise = page.context().waitForEvent('page');
  await paula.getByRole('button', { name: 'Grant Google Cloud access for paula@example.com' }).click();
  const popup = await popupPromise;
  await popup.waitForSelector('input[name=email]');
  // Incremental authorization: Google asks only for what is missing and names the rest as granted before.
  const boxes = await popup.locator('input[name=scope]').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
  assert.deepEqual(boxes, [CLOUD_PLATFORM]);
  assert.match(await popup.locator('[data-granted-before]').innerText(), /generative-language\.retriever/);
  assert.equal(await popup.inputValue('input[name=email]'), 'paula@example.com', 'the consent is for that account (login_hint)');
  await screenshot(popup, 'dashboard-projects-incremental-consent');
  await popup.getByRole('button', { name: 'Allow' }).click();
  await popup.waitForSelector('main[data-outcome]');
  assert.equal(await popup.getAttribute('main[data-outcome]', 'data-outcome'), 'updated');
  await popup.close();

  // The row shows the discovered project, without a reload.
  await paula.locator('.cell-project code', { hasText: 'paula-main' }).waitFor();
  assert.equal(await paula.getByTestId('needs-cloud-scope').count(), 0);
  const after = await stack.accountFile('paula@example.com');
  const granted = after.token.scope.split(' ');
  assert.ok(granted.includes(CLOUD_PLATFORM) && granted.includes(RETRIEVER), `both scopes in one token: ${after.token.scope}`);
  assert.deepEqual(after.missing_scopes, []);
  assert.equal(after.project_id, 'paula-main');
  assert.equal(after.project.source, 'discovered');
  await screenshot(page, 'dashboard-projects-after-incremental');

  // And it serves the Gemini API on its own project.
  stack.upstream.clearRequests();
  const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'x', maxRetries: 0 });
  await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'X-Grantpool-Account': 'paula@example.com' } });
  assert.ok(stack.upstream.requests.some((r) => r.headers['x-goog-user-project'] === 'paula-main'));
  assert.deepEqual(problems, []);
});

test('accounts that die a week after their consent: the dashboard says the app is probably in Testing mode and how to publish it', { skip: skip ?? false, timeout: 90_000 }, async () => {
  const { page } = browser;
  stack.cloud!.addProject('tom-main', { members: { 'tom@example.com': 'owner' }, enabled: [GL] });
  stack.issuer.addUser({ email: 'tom@example.com' });
  await stack.addAccount('tom@example.com');
  await page.locator('#nav a', { hasText: 'Accounts' }).click();
  await row(page, 'tom@example.com').waitFor();
  assert.equal(await page.getByTestId('testing-mode').count(), 0);

  stack.clock.advance(7 * 86_400_000 + 1800_000);
  stack.issuer.revokeUser('tom@example.com');
  const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'x', maxRetries: 0 });
  await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'X-Grantpool-Account': 'tom@example.com' } }).catch(() => null);
  await eventually('tom to be disabled', async () => (await stack.accountFile('tom@example.com'))?.disabled, 10_000);
  // A week later the dashboard session has ended too: the operator logs in again.
  await loginDashboard(page, stack.gateway.url, stack.env.GRANTPOOL_ADMIN_TOKEN!);

  const banner = page.getByTestId('testing-mode');
  await banner.waitFor();
  const text = await banner.innerText();
  assert.match(text, /1 account stopped working with invalid_grant about 7 days after being authorized \(tom@example\.com after 7 days\)/);
  assert.match(text, /Testing mode/);
  assert.match(text, /Publish app/);
  await screenshot(page, 'dashboard-projects-testing-mode-banner');

  await banner.getByRole('link', { name: 'More on the Setup page' }).click();
  const setup = page.getByTestId('testing-mode-setup');
  await setup.waitFor();
  assert.match(await setup.innerText(), /tom@example\.com died 7 days after its consent/);
  const main = await page.locator('main').innerText();
  assert.match(main, /Give each account a project of its own/);
  assert.match(main, /Google meters the Gemini API per Google Cloud project/);
  assert.match(main, /Create a project for the account/);
  assert.match(main, /Enable the Gemini API in it/);
  assert.ok(await page.locator('a[href="https://console.cloud.google.com/projectcreate"]').count() > 0);
  assert.ok(await page.locator('a[href="https://console.cloud.google.com/auth/audience"]').count() > 0);
  assert.ok(await page.locator('a[href="https://console.cloud.google.com/apis/library/cloudresourcemanager.googleapis.com"]').count() > 0);
  await screenshot(page, 'dashboard-projects-setup');
  assert.deepEqual(problems, []);
});
