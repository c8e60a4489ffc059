// A security event that arrives while a large pool is still being read (the
// gateway serves before its last account is read) is matched against every
// account, not the part read so far; a load that does not finish in time is
// a 503, so Google delivers the event again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccountSchema, type Account } from '../../src/store/account.ts';
import { EVENT_TYPES } from '../../src/risc/events.ts';
import { receiveSecurityEvent, type ReceiverDeps } from '../../src/risc/receiver.ts';
import { RiscError } from '../../src/risc/errors.ts';
import { MemorySharedState } from '../../src/store/shared-state.ts';
import type { AccountStore } from '../../src/store/store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { systemClock } from '../../src/util/clock.ts';

const LATE = AccountSchema.parse({
  id: 'late',
  email: 'late@example.com',
  sub: '2002',
  token: { access_token: 'ya29.x', refresh_token: '1//0gLATELATELATELATELATE-x', expiry_timestamp: 0 },
  created_at: 1,
});

function setup(ready: () => Promise<void>, readyWaitMs?: number) {
  const held: Account[] = [];
  const disabled: string[] = [];
  const deps: ReceiverDeps = {
    verifier: {
      verify: async () => ({
        jti: `j-${Math.random()}`,
        iat: Math.floor(Date.now() / 1000),
        events: { [EVENT_TYPES.tokensRevoked]: { subject: { subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '2002' } } },
      }),
    },
    audiences: () => ['client'],
    kv: new MemorySharedState().kv,
    accounts: () => held,
    ready,
    ...(readyWaitMs === undefined ? {} : { readyWaitMs }),
    disable: async (id) => {
      disabled.push(id);
      return held.find((a) => a.id === id) ?? null;
    },
    store: { update: async (_id: string, change: (a: Account) => Account | null) => change(LATE) } as unknown as AccountStore,
    clock: systemClock,
    logger: silentLogger(),
  };
  return { deps, held, disabled };
}

test('an event received while the accounts are still being read waits for them and disables the account read last', async () => {
  let loaded!: () => void;
  const load = new Promise<void>((r) => (loaded = r));
  const { deps, held, disabled } = setup(() => load);
  const delivery = receiveSecurityEvent(deps, 'token');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(disabled, [], 'nothing is decided before every account is read');
  held.push(LATE); // the background load reaches the account
  loaded();
  const out = await delivery;
  assert.equal(out.status, 'handled');
  assert.deepEqual(disabled, ['late']);
  assert.deepEqual(out.status === 'handled' && out.entry.events[0]!.accounts.map((a) => a.id), ['late']);
});

test('a load that does not end in time answers 503 with Retry-After, and the event is applied when delivered again', async () => {
  let loaded!: () => void;
  const load = new Promise<void>((r) => (loaded = r));
  const { deps, held, disabled } = setup(() => load, 30);
  await assert.rejects(receiveSecurityEvent(deps, 'token'), (e: unknown) => e instanceof RiscError && e.status === 503 && (e.retryAfterSeconds ?? 0) > 0);
  assert.deepEqual(disabled, []);
  held.push(LATE);
  loaded();
  assert.equal((await receiveSecurityEvent(deps, 'token')).status, 'handled');
  assert.deepEqual(disabled, ['late']);
});
