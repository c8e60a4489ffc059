// The fast reading of the usual account (usualAccount) against the schema: the
// same account, field for field and in the same order, or no answer (then the
// schema decides); never an account the schema would refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccountSchema, readOnlyAccount, usualAccount } from '../../src/store/account.ts';
import { parseAccountFile, validateAccount } from '../../src/store/account-file.ts';

const base = {
  id: 'acc-1',
  email: 'Someone@Example.com',
  sub: '1234',
  name: 'Someone',
  token: { access_token: 'ya29.x', refresh_token: '1//r', expiry_timestamp: 1_800_000_000, token_type: 'Bearer', scope: 'openid email' },
  oauth_client_id: 'c.apps.googleusercontent.com',
  project_id: 'p-1',
  created_at: 1_700_000_000,
  last_used: null,
};

/** Variations of one field (undefined: the field left out). */
const variants: Record<string, unknown[]> = {
  id: ['acc-1', 'bad id', '', 7],
  email: ['a@b.c', 3, null],
  sub: [undefined, null, 'x', 5],
  name: [undefined, null, 'N', false],
  oauth_client_id: [undefined, null, 'c', 1],
  project_id: [undefined, null, 'p', {}],
  project: [undefined, null, { source: 'manual', checked_at: 1 }, 'x'],
  project_error: [undefined, null, 'why'],
  disabled: [undefined, true, false, 'yes', 0],
  disabled_at: [undefined, null, 5, 1.5, '5', Number.MAX_SAFE_INTEGER + 2],
  disabled_reason: [undefined, null, 'r'],
  proxy_disabled: [undefined, true, 1],
  proxy_disabled_at: [undefined, null, 6],
  proxy_disabled_reason: [undefined, 'r', 2],
  missing_scopes: [undefined, [], ['a', 'b'], [1], 'a'],
  security_events: [undefined, [], [{ event: 'sessions-revoked', received_at: 1 }], [1]],
  created_at: [1, undefined, 1.5, '1', null],
  refresh_token_at: [undefined, null, 9, 'x'],
  last_used: [undefined, null, 9, -1, 2.5],
  extra_field: [undefined, 'kept', { nested: [1, 2] }],
  token: [
    base.token,
    { access_token: 'a', refresh_token: 'r', expiry_timestamp: 1 },
    { access_token: 'a', refresh_token: '', expiry_timestamp: 1 },
    { access_token: 'a', refresh_token: 'r', expiry_timestamp: 1.5 },
    { access_token: 1, refresh_token: 'r', expiry_timestamp: 1 },
    { access_token: 'a', refresh_token: 'r', expiry_timestamp: 1, token_type: 3 },
    { access_token: 'a', refresh_token: 'r', expiry_timestamp: 1, scope: null },
    { access_token: 'a', refresh_token: 'r', expiry_timestamp: 1, custom: { x: 1 } },
    null,
    [],
    'token',
  ],
};

function withField(field: string, value: unknown): Record<string, unknown> {
  const o: Record<string, unknown> = { ...base };
  if (value === undefined) delete o[field];
  else o[field] = value;
  return o;
}

test('the usual account reads exactly as the schema reads it; anything else is left to the schema', () => {
  let fast = 0;
  for (const [field, values] of Object.entries(variants)) {
    for (const value of values) {
      const input = withField(field, value);
      const zod = AccountSchema.safeParse(structuredClone(input));
      const usual = usualAccount(structuredClone(input));
      const what = `${field} = ${JSON.stringify(value)}`;
      if (!zod.success) {
        assert.equal(usual, null, `${what}: the schema refuses it, so must the fast path`);
        continue;
      }
      // An account as Grantpool writes it (every field, in order), read in place.
      const full = usualAccount(JSON.parse(JSON.stringify(zod.data)), true);
      if (full !== null) {
        assert.equal(JSON.stringify(full), JSON.stringify(zod.data), `${what} (every field present)`);
        assert.ok(Object.isFrozen(full) && Object.isFrozen(full.token) && Object.isFrozen(full.missing_scopes));
      }
      if (usual === null) continue;
      fast++;
      // Same fields, same values, same order (the file's text is written from it).
      assert.equal(JSON.stringify(usual), JSON.stringify(zod.data), what);
      assert.ok(Object.isFrozen(usual) && Object.isFrozen(usual.token), `${what}: read-only`);
    }
  }
  assert.ok(fast > 30, `the usual shapes take the fast path (${fast})`);
});

test('an account read from a file or validated for a write is read-only through and through, and does not hold the caller\'s objects', () => {
  const input = { ...base, extra_field: { nested: [1] } };
  const parsed = parseAccountFile(JSON.stringify(input), 'acc-1');
  assert.ok(parsed.ok);
  assert.ok(Object.isFrozen((parsed.account as Record<string, unknown>).extra_field));
  const written = validateAccount(input) as unknown as { extra_field: { nested: number[] } };
  assert.throws(() => written.extra_field.nested.push(2));
  input.extra_field.nested.push(2); // the caller's object stays the caller's
  assert.deepEqual(written.extra_field.nested, [1]);
  // An account the schema had to read is made read-only the same way.
  const viaSchema = readOnlyAccount(AccountSchema.parse({ ...base, project: { source: 'manual', checked_at: 1 } }));
  assert.ok(Object.isFrozen(viaSchema.project));
});
