// The dashboard in headless Chromium against the fake management API: log in,
// read the account states and reasons, act on accounts, watch live updates,
// and check that no token value ever reaches the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startFakeGateway, type FakeGateway } from '../support/fake-management-api.ts';
import { browserSkipReason, launchBrowser, loginDashboard, screenshot, watchResponses, type BrowserSession } from '../support/dashboard-browser.ts';

const skip = browserSkipReason();
let gw: FakeGateway;
let b: BrowserSession;
let watch: Awaited<ReturnType<typeof watchResponses>>;
const problems: string[] = [];

const idOf = (email: string) => [...gw.accounts.values()].find((fa) => fa.account.email === email)!.account.id;
/** Toasts sit bottom-right, over the row actions of the last rows; a user dismisses them, and so does the test. */
const dismissToasts = async (page: Page) => {
  await page.evaluate(() => {
    for (const btn of document.querySelectorAll<HTMLButtonElement>('#toasts button[aria-label="Dismiss"]')) btn.click();
  });
};
const row = (page: Page, email: string) => page.locator('tr[data-account-id]', { hasText: email });

before(async () => {
  if (skip) return;
  gw = await startFakeGateway();
  b = await launchBrowser({ timeoutMs: 8000, pageErrors: problems });
  watch = await watchResponses(b.context, b.page);
  b.page.on('console', (m) => {
    // Expected 4xx answers (a deliberately wrong refresh token) log "Failed to load resource"; anything else is a problem.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource: the server responded with a status of 4')) problems.push(`console: ${m.text()}`);
  });
});

after(async () => {
  if (skip) return;
  await b?.close();
  await gw?.close();
});

test('log in and read every account state with its reason', { skip: skip ?? false }, async () => {
  const { page } = b;
  await page.goto(gw.url);
  await screenshot(page, 'dashboard-login');
  await loginDashboard(page, gw.url, gw.adminToken);
  await page.locator('#live', { hasText: 'Live' }).waitFor();
  await page.evaluate(() => { (window as unknown as { __noReload: boolean }).__noReload = true; });

  await assert.doesNotReject(row(page, 'alice@example.com').getByText('Active', { exact: true }).waitFor());
  const erin = row(page, 'erin@example.com');
  assert.equal(await erin.locator('.badge[data-state]').textContent(), 'Disabled');
  assert.match((await erin.getByTestId('state-detail').textContent())!, /invalid_grant: Token has been expired or revoked\./);
  assert.equal(await erin.getByRole('button', { name: 'Re-authorize erin@example.com' }).count(), 1);

  const bob = row(page, 'bob@example.com');
  assert.equal(await bob.locator('.badge[data-state]').textContent(), 'Cooling down');
  assert.match((await bob.getByTestId('state-detail').textContent())!, /until .*\(in \d+ min\).*429 RESOURCE_EXHAUSTED/);

  const carol = row(page, 'carol@example.com');
  assert.equal(await carol.locator('.badge[data-state]').textContent(), 'Quota-protected');
  assert.match((await carol.getByTestId('state-detail').textContent())!, /for gemini-2\.5-pro until .*\(in 5 h\)/);

  const dave = row(page, 'dave@example.com');
  assert.equal(await dave.locator('.badge[data-state]').textContent(), 'Out of proxy');
  assert.match((await dave.getByTestId('state-detail').textContent())!, /upstream 403 PERMISSION_DENIED/);
  assert.equal(await dave.getByRole('button', { name: /Put back into proxy/ }).count(), 1);

  const frank = row(page, 'frank@example.org');
  assert.match((await frank.textContent())!, /generative-language\.retriever/, 'missing scopes are listed');
  assert.match((await row(page, 'alice@example.com').textContent())!, /148 req/);
  await screenshot(page, 'dashboard-accounts');
});

test('take an account out of the proxy and put it back', { skip: skip ?? false }, async () => {
  const { page } = b;
  const alice = row(page, 'alice@example.com');
  await alice.getByRole('button', { name: 'Take out of proxy: alice@example.com' }).click();
  await alice.locator('.badge[data-state="proxy_disabled"]').waitFor();
  assert.equal(gw.accounts.get(idOf('alice@example.com'))!.account.proxy_disabled, true);
  assert.ok(gw.calls.includes(`PATCH /api/accounts/${idOf('alice@example.com')}`));

  await alice.getByRole('button', { name: 'Put back into proxy: alice@example.com' }).click();
  await alice.locator('.badge[data-state="active"]').waitFor();
  assert.equal(gw.accounts.get(idOf('alice@example.com'))!.account.proxy_disabled, false);
});

test('a revoked account turns disabled with its reason without a reload, and one click re-authorizes it', { skip: skip ?? false }, async () => {
  const { page, context } = b;
  gw.revoke(idOf('bob@example.com'));
  const bob = row(page, 'bob@example.com');
  await bob.locator('.badge[data-state="disabled"]').waitFor();
  assert.match((await bob.getByTestId('state-detail').textContent())!, /invalid_grant: Token has been expired or revoked\./);
  assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload), true, 'the page was not reloaded');
  await screenshot(page, 'dashboard-accounts-revoked');

  const popupPromise = context.waitForEvent('page');
  await bob.getByRole('button', { name: 'Re-authorize bob@example.com' }).click();
  const popup = await popupPromise;
  await popup.waitForURL(/\/fake-google\/consent/);
  assert.equal(new URL(popup.url()).searchParams.get('login_hint'), 'bob@example.com', 'the consent is for that account');
  await popup.getByRole('button', { name: 'Allow' }).click();
  await popup.getByText('added. You can close this tab.').waitFor();
  await popup.close();

  await bob.locator('.badge[data-state="active"]').waitFor();
  assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload), true);
});

test('add an account with Google: the table updates when it arrives', { skip: skip ?? false }, async () => {
  const { page, context } = b;
  const before = await page.locator('tr[data-account-id]').count();
  const popupPromise = context.waitForEvent('page');
  await page.getByRole('button', { name: 'Add with Google' }).first().click();
  const popup = await popupPromise;
  await popup.waitForURL(/\/fake-google\/consent/);
  await page.getByText('Finish the Google consent in the new tab').waitFor();
  await popup.getByRole('button', { name: 'Allow' }).click();
  await popup.getByText('You can close this tab.').waitFor();
  await popup.close();
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-account-id]').length === n + 1, before);
});

test('select several accounts and take them out of the proxy together; remove one after confirming', { skip: skip ?? false }, async () => {
  const { page } = b;
  await page.getByRole('checkbox', { name: 'Select alice@example.com' }).check();
  await page.getByRole('checkbox', { name: 'Select carol@example.com' }).check();
  const bar = page.getByRole('region', { name: 'Actions on selected accounts' });
  await bar.getByText('2 selected').waitFor();
  await screenshot(page, 'dashboard-accounts-selection');
  await bar.getByRole('button', { name: /Take out of proxy \(2\)/ }).click();
  await row(page, 'carol@example.com').locator('.badge[data-state="proxy_disabled"]').waitFor();
  await row(page, 'alice@example.com').locator('.badge[data-state="proxy_disabled"]').waitFor();
  assert.equal(gw.accounts.get(idOf('alice@example.com'))!.account.proxy_disabled, true);
  assert.equal(gw.accounts.get(idOf('carol@example.com'))!.account.proxy_disabled, true);
  await bar.getByRole('button', { name: /Put back \(2\)/ }).click();
  await row(page, 'alice@example.com').locator('.badge[data-state="active"]').waitFor();
  await bar.getByRole('button', { name: 'Clear selection' }).click();

  const erinId = idOf('erin@example.com');
  await dismissToasts(page);
  await page.getByRole('button', { name: 'Remove erin@example.com' }).click();
  const dialog = page.getByRole('dialog', { name: 'Remove erin@example.com?' });
  await dialog.getByText('Also revoke its tokens at Google').waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.ok(gw.accounts.has(erinId), 'cancel keeps the account');
  await page.getByRole('button', { name: 'Remove erin@example.com' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove account' }).click();
  await row(page, 'erin@example.com').waitFor({ state: 'detached' });
  assert.ok(!gw.accounts.has(erinId));
  await page.getByText(/Removed erin@example\.com \(tokens were already revoked\)/).waitFor();
});

test('a wrong refresh token gets the server\'s message and fix in the dialog', { skip: skip ?? false }, async () => {
  const { page } = b;
  await page.getByRole('button', { name: 'Add by refresh token' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add an account by refresh token' });
  await dialog.getByLabel('Refresh token').fill('not-a-refresh-token');
  await dialog.getByRole('button', { name: 'Add account' }).click();
  await dialog.getByRole('alert').getByText(/Google refused this refresh token/).waitFor();
  assert.match((await dialog.getByRole('alert').textContent())!, /Fix: Use a refresh token issued to this gateway/);
  await screenshot(page, 'dashboard-add-refresh-token-error');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
});

test('proxy page: endpoints, a new key shown once and filled into the setup snippets', { skip: skip ?? false }, async () => {
  const { page } = b;
  await page.getByRole('link', { name: 'Proxy' }).click();
  await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
  await page.getByText(`${gw.url}/v1/messages`).waitFor();
  assert.match((await page.locator('pre').first().textContent())!, new RegExp(`ANTHROPIC_BASE_URL="${gw.url}"`));
  await page.getByLabel('Label for a new key').fill('laptop');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.getByText('this is the only time it is shown').waitFor();
  const key = (await page.locator('.new-key .copy-value').textContent())!;
  assert.match(key, /^gp-/);
  assert.match((await page.locator('pre').first().textContent())!, new RegExp(`ANTHROPIC_AUTH_TOKEN="${key}"`));
  await page.getByRole('tab', { name: 'OpenAI Python' }).click();
  assert.match((await page.getByRole('tabpanel').locator('pre').textContent())!, new RegExp(`base_url="${gw.url}/v1", api_key="${key}"`));
  await page.getByRole('tab', { name: 'curl' }).click();
  await screenshot(page, 'dashboard-proxy');
});

test('requests page: a usage chart and filters', { skip: skip ?? false }, async () => {
  const { page } = b;
  await page.getByRole('link', { name: 'Requests' }).click();
  await page.locator('svg.chart rect').first().waitFor();
  assert.ok((await page.locator('svg.chart rect').count()) > 10, 'bars are drawn');
  assert.match((await page.locator('.legend').textContent())!, /alice@example\.com/);
  await page.getByRole('radio', { name: 'By model' }).click();
  assert.match((await page.locator('.legend').textContent())!, /gemini-2\.5-pro/);
  await page.locator('table.table-requests tbody tr').first().waitFor();
  await page.getByLabel('Status').selectOption('429');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('table.table-requests tbody tr')];
    return rows.length > 0 && rows.every((r) => r.getAttribute('data-status') === '429');
  });
  assert.match((await page.locator('table.table-requests').textContent())!, /all accounts cooling down/);
  await page.getByLabel('Status').selectOption('');
  // A request that happens now appears at the top without a reload.
  gw.addRequest({ model_requested: 'live-model-check', status: 200, email: 'alice@example.com' });
  await page.locator('table.table-requests tbody tr').first().getByText('live-model-check').waitFor();
  await screenshot(page, 'dashboard-requests');
});

test('the OAuth client banner appears when Google rejects the client', { skip: skip ?? false }, async () => {
  const { page } = b;
  gw.setClientFailing(true);
  await page.reload();
  const banner = page.getByTestId('client-failing');
  await banner.waitFor();
  assert.match((await banner.textContent())!, /invalid_client.*Fix: Create a new OAuth client/);
  await screenshot(page, 'dashboard-client-failing');
  gw.setClientFailing(false);
});

test('no token value ever reaches the browser, and nothing broke the page', { skip: skip ?? false }, async () => {
  const leaks = await watch.leaks(gw.secrets());
  assert.deepEqual(leaks, []);
  assert.ok(watch.bodies.some((x) => x.url.startsWith('event-stream:accounts')), 'account events were watched too');
  assert.deepEqual(problems, []);
});

test('setup page for a fresh gateway, on a phone', { skip: skip ?? false }, async () => {
  const fresh = await startFakeGateway({ configured: false, seed: false });
  const phone = await launchBrowser({ viewport: { width: 390, height: 844 } });
  try {
    const { page } = phone;
    await loginDashboard(page, fresh.url, fresh.adminToken);
    await page.getByRole('heading', { name: 'Create the OAuth client in Google Cloud' }).waitFor();
    assert.match((await page.locator('.steps').textContent())!, new RegExp(`Web application.*${fresh.url}/oauth2callback`));
    assert.match((await page.locator('.steps').textContent())!, /generative-language\.retriever/);
    await screenshot(page, 'dashboard-setup-phone');
    await page.getByText('Or paste its content').click();
    await page.getByLabel('client_secret.json content').fill('{"installed_wrong": {}}');
    await page.getByRole('button', { name: 'Upload pasted JSON' }).click();
    await page.getByRole('alert').getByText(/no "web" or "installed" section/).waitFor();
    await page.getByLabel('client_secret.json content').fill(JSON.stringify({ web: { client_id: 'abc.apps.googleusercontent.com', client_secret: 'GOCSPX-x' } }));
    await page.getByRole('button', { name: 'Upload pasted JSON' }).click();
    await page.getByText('abc.apps.googleusercontent.com').first().waitFor();
    await page.getByRole('link', { name: 'Add accounts' }).click();
    await page.getByText('No accounts yet').waitFor();
    await screenshot(page, 'dashboard-accounts-empty-phone');
  } finally {
    await phone.close();
    await fresh.close();
  }
});

test('without server-sent events the dashboard falls back to polling and still shows changes', { skip: skip ?? false }, async () => {
  const quiet = await startFakeGateway({ noEvents: true });
  const other = await launchBrowser();
  try {
    const { page } = other;
    await loginDashboard(page, quiet.url, quiet.adminToken);
    await page.locator('#live', { hasText: 'Updating every 5 s' }).waitFor();
    quiet.revoke([...quiet.accounts.values()].find((fa) => fa.account.email === 'alice@example.com')!.account.id);
    await page.locator('tr[data-account-id]', { hasText: 'alice@example.com' }).locator('.badge[data-state="disabled"]').waitFor({ timeout: 12000 });
  } finally {
    await other.close();
    await quiet.close();
  }
});

test('Google\'s security events show under the account\'s state without a reload: recorded, or disabled with Google\'s reason', { skip: skip ?? false }, async () => {
  const { page } = b;
  await page.goto(gw.url);
  await page.locator('#live', { hasText: 'Live' }).waitFor();
  gw.securityEvent(idOf('alice@example.com'), 'sessions-revoked');
  const alice = row(page, 'alice@example.com');
  await alice.getByTestId('security-event').waitFor();
  assert.match((await alice.getByTestId('security-event').textContent())!, /^Google: sessions revoked · just now$/);
  assert.equal(await alice.locator('.badge[data-state]').textContent(), 'Active', 'a recorded event does not disable');

  gw.securityEvent(idOf('frank@example.org'), 'account-disabled', { reason: 'hijacking', disable: true });
  const frank = row(page, 'frank@example.org');
  await frank.locator('.badge[data-state="disabled"]').waitFor();
  assert.match((await frank.getByTestId('state-detail').textContent())!, /risc: account-disabled \(hijacking\)/);
  assert.match((await frank.getByTestId('security-event').textContent())!, /Google: account disabled \(hijacking\)/);
  await screenshot(page, 'dashboard-accounts-security-event');
});
