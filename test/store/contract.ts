// The AccountStore contract (src/store/store.ts): the behaviour every backend
// must have, as one suite that each backend runs (store-contract.test.ts).
// A new backend (PostgreSQL, ...) passes by adding one line there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Account } from '../../src/store/account.ts';
import type { AccountChange, AccountStore } from '../../src/store/store.ts';
import { importRefreshToken } from '../../src/oauth/add-account.ts';
import type { OAuthClient, TokenAnswer } from '../../src/oauth/oauth-client.ts';
import { makeAccount } from '../support/store-fixtures.ts';
import { eventually } from '../support/eventually.ts';

export interface StoreUnderTest {
  store: AccountStore;
  /**
   * For a persistent backend: a new store over the same data (after
   * `store.close()`), to check that acknowledged writes survive. Omitted by
   * backends without persistence.
   */
  reopen?: () => Promise<AccountStore>;
  /** Removes what the backend left behind (temp folders, a database schema). */
  cleanup(): Promise<void>;
}

export type MakeStore = () => Promise<StoreUnderTest>;

/** Waits until `check` holds (watch notifications may arrive after the write resolves). */

/**
 * The OAuth side of a re-add (the real importRefreshToken runs against the
 * store): the issuer accepts `refreshToken` and says it belongs to `identity`.
 */
function issuerSaying(identity: { sub: string; email: string }, accessToken: string): OAuthClient {
  const scopes = ['openid', 'email'];
  const oauth = {
    scopes,
    redirectUri: 'http://localhost:8045/oauth2callback',
    primaryClientId: 'client.apps.googleusercontent.com',
    async refreshToken(refreshToken: string): Promise<TokenAnswer> {
      return { access_token: accessToken, refresh_token: refreshToken, expires_in: 3600, scope: scopes.join(' '), token_type: 'Bearer', sub: identity.sub, client_id: 'client.apps.googleusercontent.com' };
    },
    async userinfo() {
      return { sub: identity.sub, email: identity.email, name: null };
    },
    toToken(answer: TokenAnswer, previous: { refresh_token: string }) {
      return { access_token: answer.access_token, refresh_token: answer.refresh_token ?? previous.refresh_token, expiry_timestamp: Math.floor(Date.now() / 1000) + 3600, token_type: 'Bearer', scope: answer.scope ?? '' };
    },
  };
  return oauth as unknown as OAuthClient;
}

export function accountStoreContract(name: string, makeStore: MakeStore): void {
  /** A fresh store for one case, closed and cleaned up after it. */
  async function fresh(t: { after: (fn: () => Promise<void>) => void }): Promise<StoreUnderTest> {
    const s = await makeStore();
    t.after(async () => {
      await s.store.close();
      await s.cleanup();
    });
    return s;
  }
  const add = (store: AccountStore, id: string, over: Partial<Account> = {}) => {
    const a = makeAccount(id, over);
    return store.upsertByIdentity({ sub: a.sub, email: a.email }, () => a);
  };

  test(`${name}: get and list return what was stored, read-only; unknown ids are null`, async (t) => {
    const { store } = await fresh(t);
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.get('nobody'), null);
    const { account, created } = await add(store, 'a');
    assert.equal(created, true);
    await add(store, 'b');
    assert.deepEqual(await store.get('a'), account);
    assert.deepEqual((await store.list()).map((x) => x.id).sort(), ['a', 'b']);
    const got = (await store.get('a'))!;
    assert.throws(() => {
      (got as { name: string | null }).name = 'changed';
    }, TypeError);
    assert.throws(() => {
      (got.token as { access_token: string }).access_token = 'changed';
    }, TypeError);
    assert.equal((await store.get('a'))!.name, account.name);
  });

  test(`${name}: upsertByIdentity matches sub first, else email case-insensitively; build gets a draft`, async (t) => {
    const { store } = await fresh(t);
    await add(store, 'one', { sub: 'S1', email: 'one@example.com' });
    const bySub = await store.upsertByIdentity({ sub: 'S1', email: 'renamed@example.com' }, (existing) => {
      assert.equal(existing?.id, 'one');
      existing!.name = 'drafted'; // a draft: changing it is allowed
      return { ...existing!, email: 'renamed@example.com' };
    });
    assert.equal(bySub.created, false);
    assert.equal(bySub.account.id, 'one');
    assert.equal(bySub.account.email, 'renamed@example.com');
    assert.equal(bySub.account.name, 'drafted');

    await add(store, 'two', { sub: null, email: 'Two@Example.com' });
    const byEmail = await store.upsertByIdentity({ sub: 'S2', email: 'two@example.COM' }, (existing) => {
      assert.equal(existing?.id, 'two');
      return { ...existing!, sub: 'S2' };
    });
    assert.equal(byEmail.created, false);
    assert.equal(byEmail.account.sub, 'S2');

    // A different sub with an email someone else has is another person.
    const other = await store.upsertByIdentity({ sub: 'S3', email: 'renamed@example.com' }, (existing) => {
      assert.equal(existing, null);
      return makeAccount('three', { sub: 'S3', email: 'renamed@example.com' });
    });
    assert.equal(other.created, true);
    assert.equal((await store.list()).length, 3);
    await assert.rejects(store.upsertByIdentity({ sub: 'S4', email: 'x@example.com' }, () => ({ ...makeAccount('four'), token: { refresh_token: '' } }) as unknown as Account));
    assert.equal(await store.get('four'), null, 'an invalid account is not stored');
  });

  test(`${name}: re-adding a disabled account clears disabled when the token differs, not when it is the same`, async (t) => {
    const { store } = await fresh(t);
    await add(store, 'd', { sub: 'sub-d', email: 'd@example.com', disabled: true, disabled_at: 1_700_000_000, disabled_reason: 'invalid_grant: Token has been expired or revoked.' });
    const identity = { sub: 'sub-d', email: 'd@example.com' };
    const same = (await store.get('d'))!;
    const kept = await importRefreshToken({ store, oauth: issuerSaying(identity, same.token.access_token) }, same.token.refresh_token);
    assert.equal(kept.created, false);
    assert.equal(kept.reenabled, false);
    assert.equal((await store.get('d'))!.disabled, true, 'the same credentials do not bring it back');

    const back = await importRefreshToken({ store, oauth: issuerSaying(identity, 'ya29.brand-new') }, '1//a-new-refresh-token');
    assert.equal(back.created, false);
    assert.equal(back.reenabled, true);
    const stored = (await store.get('d'))!;
    assert.equal(stored.disabled, false);
    assert.equal(stored.disabled_at, null);
    assert.equal(stored.disabled_reason, null);
    assert.equal(stored.token.refresh_token, '1//a-new-refresh-token');
    assert.equal((await store.list()).length, 1, 'the same account, not a second one');
  });

  test(`${name}: update is read-modify-write; null keeps it; invalid results are refused; unknown fields survive`, async (t) => {
    const { store } = await fresh(t);
    await add(store, 'a', { ...({ future_field: { kept: true } } as object) } as Partial<Account>);
    const updated = await store.update('a', (a) => ({ ...a, name: 'New Name' }));
    assert.equal(updated?.name, 'New Name');
    assert.deepEqual(await store.get('a'), updated);
    assert.deepEqual((updated as unknown as Record<string, unknown>).future_field, { kept: true });
    assert.deepEqual(await store.update('a', () => null), updated, 'null leaves it as it is');
    assert.deepEqual(await store.get('a'), updated);
    assert.equal(await store.update('missing', (a) => a), null);
    await assert.rejects(store.update('a', (a) => ({ ...a, token: { ...a.token, refresh_token: '' } })));
    assert.equal((await store.get('a'))!.token.refresh_token, updated!.token.refresh_token, 'nothing changed');
    // An update cannot move an account to another id (refused, or the id kept).
    const renamed = await store.update('a', (a) => ({ ...a, id: 'other' })).catch(() => null);
    if (renamed) assert.equal(renamed.id, 'a');
    assert.equal(await store.get('other'), null);
    assert.ok(await store.get('a'));
  });

  test(`${name}: concurrent updates of one account lose nothing`, async (t) => {
    const { store } = await fresh(t);
    const { account } = await add(store, 'a');
    const start = account.token.expiry_timestamp;
    const n = 40;
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        if (i % 2) await new Promise((r) => setTimeout(r, i % 5));
        return store.update('a', (a) => ({ ...a, token: { ...a.token, expiry_timestamp: a.token.expiry_timestamp + 1 } }));
      }),
    );
    assert.equal((await store.get('a'))!.token.expiry_timestamp, start + n);
  });

  test(`${name}: remove deletes and says whether it existed`, async (t) => {
    const { store } = await fresh(t);
    await add(store, 'a');
    await add(store, 'b');
    assert.equal(await store.remove('a'), true);
    assert.equal(await store.remove('a'), false);
    assert.equal(await store.get('a'), null);
    assert.deepEqual((await store.list()).map((x) => x.id), ['b']);
    assert.equal(await store.update('a', (x) => x), null, 'a removed account cannot be updated');
  });

  test(`${name}: watch tells about creations, changes and removals; unsubscribed listeners hear nothing`, async (t) => {
    const { store } = await fresh(t);
    const seen: AccountChange[] = [];
    const stop = store.watch((c) => seen.push(c));
    await add(store, 'a');
    await eventually('the creation', () => seen.some((c) => c.id === 'a' && c.account !== null));
    await store.update('a', (a) => ({ ...a, name: 'Changed' }));
    await eventually('the change', () => seen.some((c) => c.id === 'a' && c.account?.name === 'Changed'));
    await store.remove('a');
    await eventually('the removal', () => seen.some((c) => c.id === 'a' && c.account === null));
    stop();
    const count = seen.length;
    await add(store, 'b');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(seen.filter((c) => c.id === 'b').length, 0, 'nothing after unsubscribing');
    assert.ok(seen.length === count);
  });

  test(`${name}: withRefreshLock admits one holder per account at a time, others in parallel, and releases on errors`, async (t) => {
    const { store } = await fresh(t);
    await add(store, 'a');
    await add(store, 'b');
    let inside = 0;
    let most = 0;
    const body = (v: string) => async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 20));
      inside--;
      return v;
    };
    const results = await Promise.all([store.withRefreshLock('a', body('1')), store.withRefreshLock('a', body('2')), store.withRefreshLock('a', body('3'))]);
    assert.deepEqual(results.sort(), ['1', '2', '3']);
    assert.equal(most, 1, 'one holder at a time for one account');
    // Two accounts: each holder waits (up to 5 s) until the other is inside too.
    let entered = 0;
    const together = () => async () => {
      entered++;
      const end = Date.now() + 5000;
      while (entered < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      return entered;
    };
    assert.deepEqual(await Promise.all([store.withRefreshLock('a', together()), store.withRefreshLock('b', together())]), [2, 2], 'different accounts do not wait for each other');
    await assert.rejects(store.withRefreshLock('a', async () => Promise.reject(new Error('refresh failed'))), /refresh failed/);
    assert.equal(await store.withRefreshLock('a', async () => 'next'), 'next');
    // A refresh stores its token while it holds the lock.
    const stored = await store.withRefreshLock('a', () => store.update('a', (x) => ({ ...x, token: { ...x.token, access_token: 'ya29.refreshed' } })));
    assert.equal(stored?.token.access_token, 'ya29.refreshed');
  });

  test(`${name}: close waits for writes in flight, silences watchers, and acknowledged writes survive it`, async (t) => {
    const s = await makeStore();
    t.after(() => s.cleanup());
    const { store } = s;
    const { account } = await add(store, 'a');
    const start = account.token.expiry_timestamp;
    const seen: AccountChange[] = [];
    store.watch((c) => seen.push(c));
    const writes = Array.from({ length: 5 }, () => store.update('a', (a) => ({ ...a, token: { ...a.token, expiry_timestamp: a.token.expiry_timestamp + 1 } })));
    const closed = store.close();
    const results = await Promise.allSettled(writes);
    await closed;
    const acknowledged = results.filter((r) => r.status === 'fulfilled').length;
    const before = seen.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, before, 'no notification after close');
    if (s.reopen) {
      const again = await s.reopen();
      try {
        const a = (await again.get('a'))!;
        assert.ok(a, 'the account survives');
        assert.equal(a.token.expiry_timestamp, start + acknowledged, 'every acknowledged write is there, and only those');
        assert.deepEqual((await again.list()).map((x) => x.id), ['a']);
      } finally {
        await again.close();
      }
    }
  });
}
