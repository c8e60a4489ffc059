// A refresh while the store cannot answer (a database that is down): the
// account the pool holds is refreshed and served, never taken for removed,
// and its new token is written once the store answers again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { StoreUnavailableError } from '../../src/store/errors.ts';
import { refreshUnderLock } from '../../src/pool/refresh.ts';
import type { Account, Token } from '../../src/store/account.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { fakeAccount, T0 } from '../support/fake-accounts.ts';
import { eventually } from '../support/eventually.ts';

/** A memory store that can be switched off: every read and write then fails as PgStore's do while the database is down. */
class SwitchableStore extends MemoryAccountStore {
  down = false;
  private check(): void {
    if (this.down) throw new StoreUnavailableError('the account database is unreachable (test); nothing was changed');
  }
  override async get(id: string): Promise<Account | null> {
    this.check();
    return super.get(id);
  }
  override async update(id: string, change: (current: Account) => Account | null): Promise<Account | null> {
    this.check();
    return super.update(id, change);
  }
}

test('a store that cannot answer: the held account is refreshed and served, not taken for gone; the token is written when the store is back', async () => {
  const held = fakeAccount('a', { expiresIn: -60 });
  const store = new SwitchableStore([held]);
  const clock = new FakeClock(T0);
  let calls = 0;
  const refresher = {
    refresh: async (a: Account): Promise<Token> => {
      calls++;
      return { ...a.token, access_token: `fresh-${calls}`, expiry_timestamp: Math.floor(clock.now() / 1000) + 3600 };
    },
  };
  store.down = true;
  const attempt = await refreshUnderLock({ store, refresher, clock }, 'a', { held, staleAccessToken: held.token.access_token, force: false, marginMs: 60_000, refreshBeforeMs: 300_000 });
  assert.equal(attempt.ok, true, JSON.stringify(attempt));
  assert.equal(attempt.ok && attempt.account.token.access_token, 'fresh-1');
  assert.equal(calls, 1);

  store.down = false;
  // Written again with backoff (the first retry after 2 s).
  await eventually('the new token to be written', async () => (await store.get('a'))!.token.access_token === 'fresh-1', { timeoutMs: 5000, intervalMs: 100 });
});

test('a refresh whose lock fails while the store cannot answer keeps the account (not gone)', async () => {
  const held = fakeAccount('b', { expiresIn: -60 });
  const store = new SwitchableStore([held]);
  store.withRefreshLock = async () => {
    throw new StoreUnavailableError('the lock cannot be taken (test)');
  };
  store.down = true;
  const refresher = { refresh: async (): Promise<Token> => assert.fail('no refresh without its lock failing first') };
  const attempt = await refreshUnderLock({ store, refresher, clock: new FakeClock(T0) }, 'b', { held, staleAccessToken: held.token.access_token, force: false, marginMs: 60_000, refreshBeforeMs: 300_000 });
  assert.equal(attempt.ok, false);
  assert.equal(!attempt.ok && attempt.reason, 'failed', 'a store that cannot answer says nothing about the account being removed');
});
