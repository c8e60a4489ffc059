// The weekly invalid_grant of an OAuth app in Testing mode (SPEC section 7,
// docs/projects.md): Google gives an app whose consent screen has the audience
// External and the publishing status Testing refresh tokens that expire 7 days
// after the consent. Accounts then die with invalid_grant a week after they
// were (re-)authorized, every week. This is the pure check for that pattern,
// shown by /api/status (and so the dashboard), `grantpool status` and
// `grantpool doctor`.
import type { Account } from '../store/account.ts';

const DAY = 86_400;
/** Refresh tokens of an External app in Testing live this long. */
const TESTING_TOKEN_LIFETIME_SECONDS = 7 * DAY;
/**
 * An account that died this long after its consent fits the pattern. The
 * gateway renews access tokens before they expire (hourly), so it meets the
 * dead refresh token within the hour after day 7; the window leaves room for
 * clocks and for a gateway that was stopped for a day or two.
 */
const WINDOW = { from: TESTING_TOKEN_LIFETIME_SECONDS - 2 * 3600, to: 9 * DAY };

const PUBLISH_APP_URL = 'https://console.cloud.google.com/auth/audience';

export interface TestingModeSuspicion {
  /** The accounts that died with invalid_grant about 7 days after their consent. */
  accounts: { id: string; email: string; days: number }[];
  message: string;
  fix: string;
}

type Fields = Pick<Account, 'id' | 'email' | 'disabled' | 'disabled_at' | 'disabled_reason' | 'created_at' | 'refresh_token_at'>;

/** How many days after its consent an account died with invalid_grant, or null when it did not. */
export function invalidGrantAgeDays(a: Fields): number | null {
  if (!a.disabled || a.disabled_at === null || !a.disabled_reason?.startsWith('invalid_grant')) return null;
  const since = a.refresh_token_at ?? a.created_at;
  return (a.disabled_at - since) / DAY;
}

/** The accounts that fit the Testing-mode pattern, and what to do; null when none does. */
export function testingModeSuspicion(accounts: readonly Fields[]): TestingModeSuspicion | null {
  const hits: TestingModeSuspicion['accounts'] = [];
  for (const a of accounts) {
    const days = invalidGrantAgeDays(a);
    if (days === null) continue;
    const secs = days * DAY;
    if (secs >= WINDOW.from && secs < WINDOW.to) hits.push({ id: a.id, email: a.email, days: Math.round(days * 10) / 10 });
  }
  if (hits.length === 0) return null;
  const named = hits
    .slice(0, 5)
    .map((h) => `${h.email} after ${h.days} days`)
    .join(', ');
  const more = hits.length > 5 ? `, and ${hits.length - 5} more` : '';
  const n = hits.length === 1 ? '1 account' : `${hits.length} accounts`;
  return {
    accounts: hits,
    message:
      `${n} stopped working with invalid_grant about 7 days after being authorized (${named}${more}): ` +
      'the OAuth app is probably an External app in Testing mode, whose refresh tokens expire after 7 days',
    fix:
      `publish the app: in the Google Cloud console open Google Auth Platform → Audience (${PUBLISH_APP_URL}) and press "Publish app" ` +
      '(publishing status "In production"; for your own accounts you can click through the "unverified app" warning at consent), ' +
      'then re-authorize these accounts once; their new refresh tokens do not expire after a week. An Internal app (Google Workspace) has no such limit',
  };
}
