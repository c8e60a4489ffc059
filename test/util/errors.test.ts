// The one error model: every error class is a GatewayError with status, code,
// fix and the standard cause; a wrapped error keeps what it wraps; an error
// in the log carries its stack and causes, and no secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describeForLog, GatewayError, isGatewayError } from '../../src/util/errors.ts';
import { createLogger } from '../../src/log/logger.ts';
import { BadRequest, HttpError, readJson } from '../../src/http/http-util.ts';
import { RefreshError } from '../../src/oauth/refresh-error.ts';
import { classifyRefreshError } from '../../src/oauth/oauth-client.ts';
import { OAuthFlowError } from '../../src/oauth/errors.ts';
import { ClientSecretError } from '../../src/oauth/client-secret.ts';
import { ConfigError } from '../../src/config/load.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { ProxyFailure } from '../../src/proxy/engine.ts';
import { AccountNotFoundError } from '../../src/store/account-ops.ts';
import { InvalidAccountError } from '../../src/store/account-file.ts';
import { LockReentryError, LockTimeoutError } from '../../src/fsx/file-lock.ts';
import { CliError } from '../../src/cli/context.ts';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';

const ACCESS = 'ya29.a0AfB_secretAccessTokenValue123';
const REFRESH = '1//0gSecretRefreshTokenValue456';

test('every error class is a GatewayError with a status, a code and its own name', () => {
  const all: GatewayError[] = [
    new HttpError(404, 'not_found', 'no such thing'),
    new BadRequest('messages must not be empty'),
    new RefreshError('invalid_grant', 'invalid_grant', 'Token has been expired or revoked.', 400),
    new OAuthFlowError('redirect_uri_mismatch', { redirectUri: 'http://localhost:8787/oauth2callback' }),
    new ClientSecretError('missing', 'no client_secret.json', 'download it'),
    new ConfigError('port must be a number'),
    new NoAccountError('no_accounts', 'No Google account is connected.', 503),
    new ProxyFailure(429, 'rate_limited', 'Every account is rate limited.', 30),
    new AccountNotFoundError('nobody@example.com'),
    new InvalidAccountError('email: required'),
    new LockTimeoutError('/data/.lock', 5000),
    new LockReentryError('/data/.lock'),
    new CliError('no gateway is running'),
  ];
  for (const e of all) {
    assert.ok(isGatewayError(e) && e instanceof Error, e.name);
    assert.equal(typeof e.status, 'number', e.name);
    assert.ok(e.status >= 400 && e.status < 600, `${e.name}: ${e.status}`);
    assert.match(e.code, /^[a-z_]+$/, e.name);
    assert.notEqual(e.name, 'Error');
    assert.notEqual(e.name, 'GatewayError');
  }
  const [, bad, , flow, secret, , , failure] = all;
  assert.equal(bad!.status, 400);
  assert.equal(bad!.code, 'invalid_request');
  assert.equal(bad!.name, 'BadRequest');
  assert.ok(bad instanceof HttpError);
  assert.match(flow!.fix!, /Authorized redirect URIs/);
  assert.equal(secret!.fix, 'download it');
  assert.equal(failure!.retryAfterSeconds, 30);
  assert.equal((failure as ProxyFailure).type, 'rate_limited');
});

test('a wrapped error keeps its cause', async () => {
  const low = new Error('socket hang up');
  const e = new GatewayError('upstream_unavailable', 'No account could serve this request', { status: 503, cause: low });
  assert.equal(e.cause, low);
  assert.equal(new GatewayError('internal_error', 'x').cause, undefined, 'no cause given: none made up');

  // A JSON body that does not parse: the BadRequest keeps the SyntaxError.
  const req = Readable.from([Buffer.from('{"model": ')]) as unknown as IncomingMessage;
  req.headers = {};
  const err = await readJson(req, 1024).then(() => null, (x: unknown) => x);
  assert.ok(err instanceof BadRequest);
  assert.equal(err.code, 'invalid_json');
  assert.ok(err.cause instanceof SyntaxError, 'the parser error is the cause');

  // A failed token request: the RefreshError keeps the network error it was classified from.
  const network = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
  const refresh = classifyRefreshError(network);
  assert.equal(refresh.kind, 'transient');
  assert.equal(refresh.error, 'network');
  assert.equal(refresh.cause, network);

  // And the add-account flow's error keeps the RefreshError.
  const flow = new OAuthFlowError('invalid_grant', {}, { cause: refresh });
  assert.equal(flow.cause, refresh);
});

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ destination: destination as never }) };
}

test('an unexpected error in the log carries its stack and causes, without secrets', () => {
  const inner = new Error(`upstream said Bearer ${ACCESS}`);
  const e = new TypeError(`cannot use refresh token ${REFRESH}`, { cause: inner });
  const logged = describeForLog(e);
  assert.equal(logged.name, 'TypeError');
  assert.match(logged.stack!, /TypeError: cannot use refresh token \[redacted\]\n\s+at /);
  assert.match(logged.stack!, /errors\.test\.ts/, 'the stack names where it was thrown');
  assert.match(logged.cause!.message, /Bearer \[redacted\]/);
  assert.doesNotMatch(JSON.stringify(logged), /ya29\.|1\/\/0g|Secret/);
  assert.doesNotMatch(JSON.stringify(describeForLog(new Error('client_secret GOCSPX-abcdef123456'))), /GOCSPX-/);
  assert.match(JSON.stringify(describeForLog(new Error('account tok-1234567890'), ['tok-1234567890'])), /account \[redacted\]/);

  // Through the logger: an Error under `err` is serialised the same way.
  const { lines, logger } = capture();
  logger.error({ err: e, route: '/v1/chat/completions' }, 'proxy request failed');
  const line = JSON.stringify(lines[0]);
  const err = lines[0]!.err as { stack: string; cause: { message: string } };
  assert.match(err.stack, /TypeError: cannot use refresh token \[redacted\]\n\s+at /);
  assert.match(err.cause.message, /\[redacted\]/);
  assert.doesNotMatch(line, /ya29\.|1\/\/0g|Secret/);
});
