// One classification of refresh failures: the OAuth client's. Whatever a
// refresher (or the store around it) throws is classified by it; the texts
// never hold a secret; the original error stays the cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RefreshError } from '../../src/oauth/refresh-error.ts';
import { classifyRefreshError } from '../../src/oauth/refresh-classify.ts';

const REFRESH = '1//0gSecretRefreshTokenValue456';

test('one classification of refresh failures: anything a refresher throws is classified by the OAuth client, secrets removed', () => {
  const fromRefresher = new RefreshError('invalid_grant', 'invalid_grant', `token ${REFRESH} was revoked`, 400);
  const scrubbed = classifyRefreshError(fromRefresher, [REFRESH]);
  assert.equal(scrubbed.kind, 'invalid_grant');
  assert.doesNotMatch(scrubbed.message, /SecretRefreshToken/);
  const clean = new RefreshError('invalid_grant', 'invalid_grant', 'Token has been expired or revoked.', 400);
  assert.equal(classifyRefreshError(clean, [REFRESH]), clean, 'nothing to scrub: the same error');

  const bug = new TypeError("Cannot read properties of undefined (reading 'token')");
  const f = classifyRefreshError(bug);
  assert.equal(f.kind, 'transient');
  assert.equal(f.error, 'unexpected', 'a bug is not called a network error');
  assert.equal(f.cause, bug);

  const timeout = classifyRefreshError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  assert.equal(timeout.error, 'timeout');
});
