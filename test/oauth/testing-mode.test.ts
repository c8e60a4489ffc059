// The weekly invalid_grant of an OAuth app in Testing mode: the pure check,
// and end to end (the real gateway and OIDC stand-in, a clock moved on a
// week): /api/status, `grantpool status` and `grantpool doctor` say the app
// is probably in Testing mode and how to publish it; a re-authorized account
// starts a new week.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { AccountSchema, type Account } from '../../src/store/account.ts';
import { invalidGrantAgeDays, testingModeSuspicion } from '../../src/oauth/testing-mode.ts';
import { startStack } from '../support/stack.ts';
import { runCli } from '../support/run-cli.ts';
import { eventually } from '../support/eventually.ts';

const DAY = 86_400;
const T0 = 1_790_000_000;

function account(email: string, o: Partial<Account> = {}): Account {
  return AccountSchema.parse({
    id: email.replace(/\W/g, '-'),
    email,
    token: { access_token: 'ya29.x', refresh_token: '1//x', expiry_timestamp: T0 + 3600 },
    created_at: T0,
    ...o,
  });
}
const died = (email: string, afterSeconds: number, o: Partial<Account> = {}) =>
  account(email, { disabled: true, disabled_at: T0 + afterSeconds, disabled_reason: 'invalid_grant: Token has been expired or revoked.', ...o });

test('accounts that died with invalid_grant about 7 days after their consent are named; others are not', () => {
  assert.equal(testingModeSuspicion([]), null);
  assert.equal(testingModeSuspicion([account('ok@example.com')]), null, 'a healthy account');
  assert.equal(testingModeSuspicion([died('early@example.com', 2 * DAY)]), null, 'revoked after 2 days: something else');
  assert.equal(testingModeSuspicion([died('late@example.com', 40 * DAY)]), null, 'after 40 days: something else');
  assert.equal(
    testingModeSuspicion([account('other@example.com', { disabled: true, disabled_at: T0 + 7 * DAY, disabled_reason: 'manual' })]),
    null,
    'disabled for another reason',
  );

  const s = testingModeSuspicion([died('ann@example.com', 7 * DAY + 1800), died('ben@example.com', 7 * DAY + 3 * 3600), account('cat@example.com')]);
  assert.ok(s);
  assert.deepEqual(s.accounts.map((a) => [a.email, a.days]), [['ann@example.com', 7], ['ben@example.com', 7.1]]);
  assert.match(s.message, /^2 accounts stopped working with invalid_grant about 7 days after being authorized \(ann@example\.com after 7 days, ben@example\.com after 7\.1 days\)/);
  assert.match(s.message, /External app in Testing mode, whose refresh tokens expire after 7 days/);
  assert.match(s.fix, /Publish app/);
  assert.ok(s.fix.includes('https://console.cloud.google.com/auth/audience'));

  // A re-authorized account counts from its new consent, not from when it was first added.
  const readded = died('dan@example.com', 21 * DAY, { refresh_token_at: T0 + 14 * DAY });
  assert.equal(invalidGrantAgeDays(readded), 7);
  assert.equal(testingModeSuspicion([readded])?.accounts[0]?.email, 'dan@example.com');
  assert.equal(testingModeSuspicion([died('eve@example.com', 21 * DAY)]), null, 'without refresh_token_at: 21 days after created_at');
});

test('end to end: an account dies a week after its consent; status, CLI status and doctor say the app is probably in Testing mode until it is re-authorized', async () => {
  const stack = await startStack();
  try {
    stack.issuer.addUser({ email: 'tess@example.com' });
    const r = await stack.addAccount('tess@example.com');
    assert.match(r.html, /data-outcome="added"/);
    const added = await stack.accountFile('tess@example.com');
    assert.equal(added.refresh_token_at, added.created_at, 'the consent time of the refresh token is recorded');

    let status = (await stack.api('GET', '/api/status')).body;
    assert.equal(status.oauth.testing_mode, null);

    // A week and an hour later Google says invalid_grant (a Testing-mode refresh token has expired).
    stack.clock.advance(7 * DAY * 1000 + 3600_000);
    stack.issuer.revokeUser('tess@example.com');
    const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'x', maxRetries: 0 });
    await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }).catch(() => null);
    const dead = await eventually('the account to be disabled', async () => {
      const file = await stack.accountFile('tess@example.com');
      return file?.disabled === true && file;
    }, 8000);
    assert.match(dead.disabled_reason, /^invalid_grant/);

    status = (await stack.api('GET', '/api/status')).body;
    assert.ok(status.oauth.testing_mode, 'the status names the pattern');
    assert.deepEqual(status.oauth.testing_mode.accounts.map((a: { email: string }) => a.email), ['tess@example.com']);
    assert.match(status.oauth.testing_mode.message, /1 account stopped working with invalid_grant about 7 days after being authorized \(tess@example\.com after 7 days\)/);

    const st = await runCli(['status'], stack.env);
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /warning: 1 account stopped working with invalid_grant about 7 days after being authorized/);
    assert.match(st.out, /fix: publish the app: .*Audience \(https:\/\/console\.cloud\.google\.com\/auth\/audience\)/);

    const doc = await runCli(['doctor'], stack.env);
    assert.match(doc.out, /warn refresh token lifetime: 1 account stopped working with invalid_grant .*Testing mode/);
    assert.match(doc.out, /fix: publish the app/);
    assert.equal(doc.code, 0, 'a warning, not a failed check');

    // Re-authorized (after publishing): the account works again and the warning is gone.
    const back = await stack.addAccount('tess@example.com', { loginHint: 'tess@example.com' });
    assert.match(back.html, /data-outcome="reenabled"/);
    const fresh = await stack.accountFile('tess@example.com');
    assert.ok(fresh.refresh_token_at > added.refresh_token_at + 7 * DAY, 'the new consent starts a new week');
    status = (await stack.api('GET', '/api/status')).body;
    assert.equal(status.oauth.testing_mode, null);
    const doc2 = await runCli(['doctor'], stack.env);
    assert.match(doc2.out, /ok {3}refresh token lifetime/);
  } finally {
    await stack.close();
  }
});
