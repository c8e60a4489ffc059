// How the receiver treats deliveries that meet something else in progress:
// a large pool still being read after a start, another delivery of the same
// token still being applied, an account whose tokens this gateway cannot
// decrypt. Google delivers an event again after a 503; an acknowledged one
// (202) never comes back, so nothing may be acknowledged that was not applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccountSchema, type Account } from '../../src/store/account.ts';
import { EVENT_TYPES } from '../../src/risc/events.ts';
import { receiveSecurityEvent, type ReceiverDeps } from '../../src/risc/receiver.ts';
import { RiscError } from '../../src/risc/errors.ts';
import { MemorySharedState } from '../../src/store/shared-state.ts';
import { AccountEncryptedError } from '../../src/store/token-cipher.ts';
import type { AccountStore } from '../../src/store/store.ts';
import { createLogger } from '../../src/log/logger.ts';
import { systemClock } from '../../src/util/clock.ts';

const ACCOUNT = AccountSchema.parse({
  id: 'acc',
  email: 'acc@example.com',
  sub: '2002',
  token: { access_token: 'ya29.x', refresh_token: '1//0gACCACCACCACCACCACCACC-x', expiry_timestamp: 0 },
  created_at: 1,
});

interface Setup {
  ready?: () => Promise<void>;
  readyWaitMs?: number;
  /** The store's update (records the event on the account). */
  update?: (id: string, change: (a: Account) => Account | null) => Promise<Account | null>;
  /** One token identifier for every delivery (a redelivery of one token). */
  jti?: string;
}

function setup(o: Setup = {}) {
  const held: Account[] = [ACCOUNT];
  const disabled: string[] = [];
  const logs: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void logs.push(line) } } as never);
  const deps: ReceiverDeps = {
    verifier: {
      verify: async () => ({
        jti: o.jti ?? `j-${Math.random()}`,
        iat: Math.floor(Date.now() / 1000),
        events: { [EVENT_TYPES.tokensRevoked]: { subject: { subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '2002' } } },
      }),
    },
    audiences: () => ['client'],
    kv: new MemorySharedState().kv,
    accounts: () => held,
    ...(o.ready ? { ready: o.ready } : {}),
    ...(o.readyWaitMs === undefined ? {} : { readyWaitMs: o.readyWaitMs }),
    disable: async (id) => {
      disabled.push(id);
      return held.find((a) => a.id === id) ?? null;
    },
    store: { update: o.update ?? (async (_id: string, change: (a: Account) => Account | null) => change(ACCOUNT)) } as unknown as AccountStore,
    clock: systemClock,
    logger,
  };
  return { deps, held, disabled, logs };
}

const is503 = (e: unknown) => e instanceof RiscError && e.status === 503 && (e.retryAfterSeconds ?? 0) > 0;

test('an event received while the accounts are still being read waits for them and disables the account read last', async () => {
  let loaded!: () => void;
  const load = new Promise<void>((r) => (loaded = r));
  const { deps, held, disabled } = setup({ ready: () => load });
  held.length = 0; // not read yet
  const delivery = receiveSecurityEvent(deps, 'token');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(disabled, [], 'nothing is decided before every account is read');
  held.push(ACCOUNT); // the background load reaches the account
  loaded();
  const out = await delivery;
  assert.equal(out.status, 'handled');
  assert.deepEqual(disabled, ['acc']);
  assert.deepEqual(out.status === 'handled' && out.entry.events[0]!.accounts.map((a) => a.id), ['acc']);
});

test('a load that does not end in time answers 503 with Retry-After, and the event is applied when delivered again', async () => {
  let loaded!: () => void;
  const load = new Promise<void>((r) => (loaded = r));
  const { deps, held, disabled } = setup({ ready: () => load, readyWaitMs: 30 });
  held.length = 0;
  await assert.rejects(receiveSecurityEvent(deps, 'token'), is503);
  assert.deepEqual(disabled, []);
  held.push(ACCOUNT);
  loaded();
  assert.equal((await receiveSecurityEvent(deps, 'token')).status, 'handled');
  assert.deepEqual(disabled, ['acc']);
});

test('a delivery that meets another one of the same token still being applied is a 503, not an acknowledged duplicate; if the first fails, the next delivery applies it', async () => {
  let fail!: (e: Error) => void;
  let calls = 0;
  const { deps } = setup({
    jti: 'same-token',
    update: async (_id, change) => {
      calls++;
      if (calls === 1) return new Promise<Account | null>((_r, reject) => (fail = reject));
      return change(ACCOUNT);
    },
  });
  const first = receiveSecurityEvent(deps, 'token');
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(receiveSecurityEvent(deps, 'token'), is503, 'the second delivery is asked to come again');
  fail(new Error('disk full'));
  await assert.rejects(first, is503, 'the first one could not write: Google delivers it again');
  const again = await receiveSecurityEvent(deps, 'token');
  assert.equal(again.status, 'handled', 'the redelivery is applied, not dropped as a duplicate');
  assert.equal((await receiveSecurityEvent(deps, 'token')).status, 'duplicate', 'once applied, a redelivery is a duplicate');
});

test('an account whose tokens this gateway cannot decrypt is left as it is and the delivery is acknowledged; the log names it, no token', async () => {
  const { deps, logs } = setup({
    update: async () => {
      throw new AccountEncryptedError(ACCOUNT, { keyId: 'k2', why: 'unknown_key' as never, reason: 'encrypted with key k2, which this gateway does not have' });
    },
  });
  const out = await receiveSecurityEvent(deps, 'token');
  assert.equal(out.status, 'handled');
  assert.deepEqual(out.status === 'handled' && out.entry.events[0]!.accounts, [{ id: 'acc', email: 'acc@example.com', disabled: false }]);
  const text = logs.join('');
  assert.match(text, /acc@example\.com, whose tokens are encrypted with a key this gateway does not have/);
  assert.ok(!text.includes(ACCOUNT.token.refresh_token) && !text.includes(ACCOUNT.token.access_token));
});
