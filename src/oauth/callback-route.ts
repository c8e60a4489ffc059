// GET /oauth2callback: where Google sends the browser after consent. Checks
// the state, explains Google's errors in plain words, and on success names
// the account (and any scopes the user did not grant). The page is small,
// self-contained HTML and never shows a token. `<main data-outcome="...">`
// tells a browser test how it ended ("added", "updated", "reenabled", "error").
import type { Handler } from '../http/router.ts';
import { escapeHtml, sendHtml } from '../http/http-util.ts';
import type { Logger } from '../log/logger.ts';
import { completeConsent, type AddAccountDeps, type AddAccountResult } from './add-account.ts';
import { OAuthFlowError } from './errors.ts';
import { describeForLog, isGatewayError } from '../util/errors.ts';
import { describeStorageError } from '../fsx/storage-errors.ts';

export interface CallbackDeps {
  /** The add-account dependencies; null (or a getter returning null) while no OAuth client is configured. */
  addAccount: AddAccountDeps | null | (() => AddAccountDeps | null);
  logger?: Logger;
}

export function oauthCallbackHandler(deps: CallbackDeps): Handler {
  return async ({ req, res, url }) => {
    if (req.method !== 'GET') {
      // HEAD (link previews, prefetchers) must not use up the one-time state.
      sendHtml(res, 405, '', { allow: 'GET' });
      return;
    }
    const add = typeof deps.addAccount === 'function' ? deps.addAccount() : deps.addAccount;
    try {
      if (!add) throw new OAuthFlowError('client_not_configured');
      const result = await completeConsent(add, url);
      sendHtml(res, 200, successPage(result), PAGE_HEADERS);
    } catch (e) {
      const answer = callbackErrorAnswer(e, deps.logger);
      sendHtml(res, answer.status, answer.html, PAGE_HEADERS);
    }
  };
}

/**
 * The callback page's one mapping from an error to an answer (an HTML page):
 * the OAuth flow's errors with their explanation, any other GatewayError with
 * its message and fix, and anything else (logged once with its stack,
 * scrubbed) as a generic page that never quotes it.
 */
export function callbackErrorAnswer(e: unknown, logger?: Logger): { status: number; html: string } {
  if (e instanceof OAuthFlowError) {
    logger?.warn({ error: e.code }, `OAuth callback: ${e.title}`);
    return { status: e.status, html: errorPage(e.code, e.title, e.explanation, e.fix, e.description) };
  }
  if (isGatewayError(e)) {
    logger?.warn({ error: e.code }, `OAuth callback: ${e.message}`);
    const fix = e.fix ?? 'Try again; if it keeps happening, look at the gateway log.';
    return { status: e.status, html: errorPage(e.code, 'The gateway could not finish the sign-in', `${e.message.replace(/\.$/, '')}. Nothing was added.`, fix, '') };
  }
  const storage = describeStorageError(e, 'the account');
  if (storage) {
    logger?.error({ err: describeForLog(e) }, 'OAuth callback: the account could not be saved');
    return {
      status: 507,
      html: errorPage('storage_full', 'The account could not be saved', `Google signed the account in, but the gateway ${storage.replace(/; free.*$/, '')}. Nothing was added.`, 'Free some space on the disk that holds the data directory (or make it writable), then add the account again.', ''),
    };
  }
  logger?.error({ err: describeForLog(e) }, 'OAuth callback failed');
  return {
    status: 500,
    html: errorPage('internal_error', 'The gateway could not finish the sign-in', 'An unexpected error happened while adding the account. Nothing was added.', 'Try again; if it keeps happening, look at the gateway log.', ''),
  };
}

const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
};

function successPage(r: AddAccountResult): string {
  const a = r.account;
  const outcome = r.created ? 'added' : r.reenabled ? 'reenabled' : 'updated';
  const heading = r.created ? 'Account added' : r.reenabled ? 'Account re-added and enabled again' : 'Account updated';
  const who = `<strong data-email>${escapeHtml(a.email)}</strong>${a.name ? ` (${escapeHtml(a.name)})` : ''}`;
  const lines = [
    `<p>${who} ${r.created ? 'is now in the pool' : 'has new credentials'}${r.reenabled ? ' and is back in the pool (it was disabled because its old sign-in stopped working)' : ''}.</p>`,
  ];
  if (r.missing_scopes.length) {
    lines.push(
      `<section class="warn" data-missing-scopes><h2>Some permissions were not granted</h2>` +
        `<p>Google granted fewer permissions than requested. Requests that need these will not use this account:</p>` +
        `<ul>${r.missing_scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('')}</ul>` +
        `<p>To grant them, add the account again and tick every box on Google's consent screen.</p></section>`,
    );
  }
  lines.push('<p>You can close this tab, or go <a href="/">back to the dashboard</a>.</p>');
  return page(heading, `<main data-outcome="${outcome}" data-account-id="${escapeHtml(a.id)}"><h1>${escapeHtml(heading)}</h1>${lines.join('\n')}</main>`);
}

function errorPage(code: string, title: string, explanation: string, fix: string, description: string): string {
  const said = description ? `<p class="detail">Google said: <q>${escapeHtml(description)}</q></p>` : '';
  return page(
    title,
    `<main data-outcome="error" data-error="${escapeHtml(code)}"><h1>${escapeHtml(title)}</h1>` +
      `<p>${escapeHtml(explanation)}</p>${said}` +
      `<h2>What to do</h2><p>${escapeHtml(fix)}</p>` +
      `<p class="detail">Error code: <code>${escapeHtml(code)}</code> · <a href="/">Dashboard</a></p></main>`,
  );
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · Grantpool</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:40rem;margin:4rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #d0d7de;border-radius:8px}
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.05rem}
main[data-outcome=error] h1{color:#cf222e}main:not([data-outcome=error]) h1{color:#1a7f37}
.warn{border-left:4px solid #bf8700;padding-left:1rem}.detail{color:#57606a;font-size:.9rem}
code{font-size:.85rem;word-break:break-all}
</style></head><body>
${body}
</body></html>`;
}
