// Issue 5 end to end: an operator in a real browser (headless Chromium) with
// the real gateway and the OIDC stand-in: log in, add an account through the
// consent flow, watch it die (invalid_grant) and come back, toggle, remove.
// Screenshots of each step land in test-output/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Page } from 'playwright-core';
import { startStack, type Stack } from '../support/stack.ts';
import { browserSkipReason, launchBrowser, screenshot, watchResponses, type BrowserSession } from '../support/dashboard-browser.ts';

const skip = browserSkipReason();
let stack: Stack;
let browser: BrowserSession;
let watcher: Awaited<ReturnType<typeof watchResponses>>;

before(async () => {
  if (skip) return;
  stack = await startStack();
  browser = await launchBrowser();
  watcher = await watchResponses(browser.context, browser.page);
});
after(async () => {
  await browser?.close();
  await stack?.close();
});

function row(page: Page, email: string) {
  return page.locator('tr[data-account-id]', { hasText: email });
}

/** Clicks `button`, finishes the consent in the tab it opens, and waits for the callback page. */
async function consentInPopup(page: Page, click: () => Promise<void>, email: string | null) {
  const popupPromise = page.context().waitForEvent('page');
  await click();
  const popup = await popupPromise;
  await popup.waitForSelector('input[name=email]');
  if (email) await popup.fill('input[name=email]', email);
  await popup.getByRole('button', { name: 'Allow' }).click();
  await popup.waitForSelector('main[data-outcome]');
  const outcome = await popup.getAttribute('main[data-outcome]', 'data-outcome');
  const shot = await screenshot(popup, `dashboard-callback-${outcome}`);
  await popup.close();
  return { outcome, shot };
}

test('an operator adds an account, sees it die with the reason, brings it back, toggles and removes it, all without reloading', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const { page } = browser;
  stack.issuer.addUser({ email: 'olivia@example.com', name: 'Olivia' });

  await page.goto(`${stack.gateway.url}/`);
  await screenshot(page, 'dashboard-01-login');
  assert.equal(await page.locator('table').count(), 0, 'nothing but the login page without a session');
  await page.getByLabel('Admin token').fill('wrong-token-wrong-token');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('That admin token is not right.').waitFor();
  await page.getByLabel('Admin token').fill(stack.env.GRANTPOOL_ADMIN_TOKEN!);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForSelector('#nav');
  await screenshot(page, 'dashboard-02-empty');

  // Add via Google: the consent opens in a new tab; the table updates by itself.
  const added = await consentInPopup(page, () => page.getByRole('button', { name: 'Add with Google' }).first().click(), 'olivia@example.com');
  assert.equal(added.outcome, 'added');
  await row(page, 'olivia@example.com').and(page.locator('[data-state=active]')).waitFor();
  await screenshot(page, 'dashboard-03-active');

  // The grant is revoked at Google; the next request finds out (invalid_grant).
  stack.issuer.revokeUser('olivia@example.com');
  const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const failed = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
  assert.ok(failed instanceof OpenAI.APIError && failed.status === 503, 'no healthy account left: 503');
  const dead = row(page, 'olivia@example.com').and(page.locator('[data-state=disabled]'));
  await dead.waitFor({ timeout: 10_000 });
  // The row turns disabled when the pool knows (reason "invalid_grant"), and shows Google's
  // description once the disable is written, an event later (both under load).
  await dead.filter({ hasText: 'Token has been expired or revoked.' }).waitFor({ timeout: 10_000 });
  assert.match(await dead.innerText(), /invalid_grant: Token has been expired or revoked\./);
  await screenshot(page, 'dashboard-04-disabled');

  // One click re-authorizes it (consent with login_hint = its email).
  const back = await consentInPopup(page, () => page.getByRole('button', { name: 'Re-authorize olivia@example.com' }).click(), null);
  assert.equal(back.outcome, 'reenabled');
  await row(page, 'olivia@example.com').and(page.locator('[data-state=active]')).waitFor();
  const ok = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(ok.choices[0]!.message.content);
  await screenshot(page, 'dashboard-05-reauthorized');

  // Take out of the proxy and put back.
  await page.getByRole('button', { name: 'Take out of proxy: olivia@example.com' }).click();
  await row(page, 'olivia@example.com').and(page.locator('[data-state=proxy_disabled]')).waitFor();
  assert.equal((await stack.accountFile('olivia@example.com')).proxy_disabled_reason, 'manual');
  await screenshot(page, 'dashboard-06-proxy-disabled');
  await page.getByRole('button', { name: 'Put back into proxy: olivia@example.com' }).click();
  await row(page, 'olivia@example.com').and(page.locator('[data-state=active]')).waitFor();

  // The other pages render with this gateway's real values.
  await page.locator('#nav a', { hasText: 'Proxy' }).click();
  await page.getByRole('tab', { name: 'Claude Code' }).waitFor();
  const proxyText = await page.locator('main').innerText();
  assert.ok(proxyText.includes(`ANTHROPIC_BASE_URL="${stack.gateway.url}"`), proxyText);
  await screenshot(page, 'dashboard-07-proxy');
  await page.locator('#nav a', { hasText: 'Requests' }).click();
  await page.waitForSelector('main');
  await screenshot(page, 'dashboard-08-requests');
  await page.locator('#nav a', { hasText: 'Accounts' }).click();

  // Remove (revokes at Google).
  const file = await stack.accountFile('olivia@example.com');
  await page.getByRole('button', { name: 'Remove olivia@example.com' }).click();
  await page.getByRole('button', { name: 'Remove account' }).click();
  await row(page, 'olivia@example.com').waitFor({ state: 'detached' });
  assert.equal(await stack.accountFile('olivia@example.com'), null);
  assert.equal(await stack.issuer.refreshTokenIsActive(file.token.refresh_token), false);
  await screenshot(page, 'dashboard-09-removed');

  // The one-field dialogs show the API's plain-words error next to the field.
  await page.getByRole('button', { name: 'Add by refresh token' }).click();
  await page.getByLabel('Refresh token', { exact: true }).fill('1//not-a-real-token');
  await page.getByRole('button', { name: 'Add account' }).click();
  await page.locator('dialog .form-error').waitFor();
  assert.match(await page.locator('dialog .form-error').innerText(), /expired|revoked|invalid/i);
  await screenshot(page, 'dashboard-10-refresh-token-error');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('button', { name: 'Paste redirect URL' }).click();
  await page.getByLabel('Redirect URL from the address bar').fill(`${stack.gateway.url}/oauth2callback?state=forged&code=x`);
  await page.getByRole('button', { name: 'Finish' }).click();
  await page.locator('dialog .form-error').waitFor();
  assert.match(await page.locator('dialog .form-error').innerText(), /state|start again|unknown/i);
  await page.getByRole('button', { name: 'Cancel' }).click();

  // No token value ever reached the browser.
  const secrets = [file.token.refresh_token, file.token.access_token, stack.issuer.client.client_secret];
  assert.deepEqual(await watcher.leaks(secrets), []);
});
