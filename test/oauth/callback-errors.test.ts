// The OAuth callback page's error boundary: the flow's own errors are
// explained; anything unexpected is a generic HTML page that never quotes it,
// logged once with its stack, free of secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Router } from '../../src/http/router.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { oauthCallbackHandler } from '../../src/oauth/callback-route.ts';
import type { AddAccountDeps } from '../../src/oauth/add-account.ts';
import { LogCapture } from '../support/stack.ts';

const CODE = '4/0AeanS0bSecretAuthorizationCode';
const SECRET = 'ya29.a0AfB_pageLeakedAccessToken987654';

async function withCallback(take: () => never, fn: (url: string, logs: LogCapture) => Promise<void>): Promise<void> {
  const logs = new LogCapture();
  const deps = {
    oauth: { redirectUri: 'http://127.0.0.1/oauth2callback', primaryClientId: 'client-1.apps.googleusercontent.com' },
    flows: { take },
  } as unknown as AddAccountDeps;
  const router = new Router();
  router.on('GET', '/oauth2callback', oauthCallbackHandler({ addAccount: deps, logger: createLogger({ destination: logs.stream as never }) }));
  const server = createHttpServer(router, silentLogger());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2callback`, logs);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

test('an unexpected error is a generic HTML page without its text, logged once with its stack and no secret', async () => {
  const bug = () => {
    throw new TypeError(`flows.get is not a function (state for ${SECRET})`);
  };
  await withCallback(bug as () => never, async (url, logs) => {
    const res = await fetch(`${url}?state=s1&code=${encodeURIComponent(CODE)}`);
    const html = await res.text();
    assert.equal(res.status, 500);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(html, /<main data-outcome="error" data-error="internal_error">/);
    assert.match(html, /Nothing was added/);
    assert.doesNotMatch(html, /is not a function|TypeError|ya29|at (file|node):/, 'the page never quotes the error');

    const errors = logs.lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1, logs.text());
    const err = errors[0]!.err as { name: string; stack: string };
    assert.equal(err.name, 'TypeError');
    assert.match(err.stack, /^TypeError: flows\.get is not a function \(state for \[redacted\]\)\n\s+at /);
    assert.doesNotMatch(logs.text(), /ya29\.|SecretAuthorizationCode/);
  });
});

test('the flow\'s own error is explained on the page with its status and fix', async () => {
  const unknown = () => ({ ok: false, reason: 'unknown' });
  await withCallback(unknown as unknown as () => never, async (url, logs) => {
    const res = await fetch(`${url}?state=nope&code=x`);
    const html = await res.text();
    assert.equal(res.status, 400);
    assert.match(html, /data-error="state_unknown"/);
    assert.match(html, /What to do/);
    assert.equal(logs.lines.filter((l) => l.level === 50).length, 0, 'an explained error is not logged as an error');
  });
});
