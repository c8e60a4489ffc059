// The pure decisions about Google's security events (src/risc/events.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AccountSchema, MAX_SECURITY_EVENTS, type Account } from '../../src/store/account.ts';
import { decide, EVENT_TYPES, matchAccounts, parseSecurityEventToken, refreshTokenHash, withSecurityEvent } from '../../src/risc/events.ts';
import { RiscError } from '../../src/risc/errors.ts';

function account(id: string, sub: string | null, refresh: string, extra: Partial<Account> = {}): Account {
  return AccountSchema.parse({
    id,
    email: `${id}@example.com`,
    sub,
    token: { access_token: 'ya29.x', refresh_token: refresh, expiry_timestamp: 0 },
    created_at: 1,
    ...extra,
  });
}

const A = account('a', '1001', '1//0gAAAAAAAAAAAAAAAAAAAA-first');
const B = account('b', '1002', '1//0gBBBBBBBBBBBBBBBBBBBB-second');
const DISABLED = account('c', '1003', '1//0gCCCCCCCCCCCCCCCCCCCC-third', { disabled: true, disabled_reason: 'invalid_grant: x' });

function one(events: Record<string, unknown>) {
  return parseSecurityEventToken({ jti: 'j1', iat: 1, events }).events[0]!;
}

test('subjects: iss-sub and id_token_claims by sub, id_token_claims by email, refresh token by prefix or by double SHA-512', () => {
  assert.deepEqual(one({ [EVENT_TYPES.tokensRevoked]: { subject: { subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '1001' } } }).subject, { by: 'sub', sub: '1001' });
  assert.deepEqual(one({ [EVENT_TYPES.sessionsRevoked]: { subject: { subject_type: 'id_token_claims', iss: 'x', email: 'A@example.com' } } }).subject, { by: 'email', email: 'A@example.com' });
  const prefix = one({ [EVENT_TYPES.tokenRevoked]: { subject: { subject_type: 'oauth_token', token_type: 'refresh_token', token_identifier_alg: 'prefix', token: A.token.refresh_token.slice(0, 16) } } });
  assert.deepEqual(matchAccounts([A, B], prefix.subject).map((a) => a.id), ['a']);
  const doubleHash = createHash('sha512').update(createHash('sha512').update(B.token.refresh_token).digest()).digest();
  for (const encoded of [doubleHash.toString('base64'), doubleHash.toString('base64url')]) {
    const e = one({ [EVENT_TYPES.tokenRevoked]: { subject: { subject_type: 'oauth_token', token_type: 'refresh_token', token_identifier_alg: 'hash_base64_sha512_sha512', token: encoded } } });
    assert.deepEqual(matchAccounts([A, B], e.subject).map((a) => a.id), ['b'], encoded);
  }
  assert.equal(refreshTokenHash(B.token.refresh_token), doubleHash.toString('base64'));
  assert.deepEqual(matchAccounts([A, B], one({ [EVENT_TYPES.sessionsRevoked]: { subject: { subject_type: 'id_token_claims', email: 'a@EXAMPLE.com' } } }).subject).map((a) => a.id), ['a']);
});

test('subjects that cannot be used match nobody and say why', () => {
  const cases: [unknown, RegExp][] = [
    [undefined, /no subject/],
    [{ subject_type: 'oauth_token', token_type: 'refresh_token', token_identifier_alg: 'prefix', token: '1//0g' }, /shorter than 16/],
    [{ subject_type: 'oauth_token', token_type: 'access_token', token_identifier_alg: 'prefix', token: 'ya29.aaaaaaaaaaaaaaaaaaaaa' }, /access_token/],
    [{ subject_type: 'oauth_token', token_type: 'refresh_token', token_identifier_alg: 'plain', token: A.token.refresh_token }, /plain is not supported/],
    [{ subject_type: 'phone', phone_number: '+1' }, /phone is not supported/],
    ['1001', /not an object/],
  ];
  for (const [subject, why] of cases) {
    const e = one({ [EVENT_TYPES.tokensRevoked]: subject === undefined ? {} : { subject } });
    assert.equal(e.subject, null);
    assert.match(e.subjectProblem!, why);
    assert.deepEqual(decide(e, [A, B], 0), []);
  }
});

test('decisions: disabling events disable with the reason, an account already disabled is only recorded, the rest is recorded or logged', () => {
  const disabled = one({ [EVENT_TYPES.accountDisabled]: { subject: { subject_type: 'iss-sub', sub: '1001' }, reason: 'hijacking' } });
  assert.deepEqual(decide(disabled, [A, B], 5_000_000), [{ account: A, disable: 'risc: account-disabled (hijacking)', record: { event: 'account-disabled', received_at: 5000, reason: 'hijacking' } }]);
  const again = one({ [EVENT_TYPES.tokensRevoked]: { subject: { subject_type: 'iss-sub', sub: '1003' } } });
  assert.equal(decide(again, [DISABLED], 0)[0]!.disable, null, 'the first reason stays');
  const sessions = one({ [EVENT_TYPES.sessionsRevoked]: { subject: { subject_type: 'iss-sub', sub: '1002' } } });
  assert.equal(decide(sessions, [A, B], 0)[0]!.disable, null);
  assert.equal(decide(sessions, [A, B], 0)[0]!.record.event, 'sessions-revoked');
  assert.equal(one({ [EVENT_TYPES.verification]: { state: 'abc' } }).effect, 'log');
  assert.equal(one({ 'https://example.com/other': { subject: { subject_type: 'iss-sub', sub: '1001' } } }).effect, 'ignore');
  const noisy = one({ [EVENT_TYPES.accountDisabled]: { subject: { subject_type: 'iss-sub', sub: '1001' }, reason: `bad\nline${'x'.repeat(500)}` } });
  assert.ok(noisy.reason!.length <= 100 && !noisy.reason!.includes('\n'), 'the reason is bounded and printable');
});

test('a payload without jti or events is a 400 invalid_request; security_events stay bounded, newest first', () => {
  for (const payload of [{ events: { x: {} } }, { jti: 'j' }, { jti: 'j', events: {} }, { jti: '', events: { x: {} } }, null]) {
    assert.throws(() => parseSecurityEventToken(payload), (e: unknown) => e instanceof RiscError && e.status === 400 && e.err === 'invalid_request');
  }
  let a = A;
  for (let i = 0; i < MAX_SECURITY_EVENTS + 5; i++) a = { ...a, security_events: withSecurityEvent(a, { event: `e${i}`, received_at: i, reason: null }) };
  assert.equal(a.security_events.length, MAX_SECURITY_EVENTS);
  assert.equal(a.security_events[0]!.event, `e${MAX_SECURITY_EVENTS + 4}`);
});
