// One contract for every UsageStore (in memory, the data directory's files,
// shared through a database): what quota protection and /api/usage rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UsageRecord, UsageStore } from '../../src/pool/usage.ts';
import { eventually } from '../support/eventually.ts';

export interface UsageBackend {
  /** A handle on the place the counts live: another gateway on it (shared), or the same gateway after a restart (durable). */
  open(): Promise<UsageStore>;
  close(): Promise<void>;
}

export interface UsageTraits {
  /** Counts survive a close and a new open. */
  durable: boolean;
  /** Two open handles see each other's counts. */
  shared: boolean;
}

const sorted = (rs: UsageRecord[]) => [...rs].sort((x, y) => `${x.date} ${x.account_id} ${x.model}`.localeCompare(`${y.date} ${y.account_id} ${y.model}`));

export function usageStoreContract(name: string, traits: UsageTraits, backend: () => Promise<UsageBackend>): void {
  const withBackend = (fn: (b: UsageBackend) => Promise<void>) => async () => {
    const b = await backend();
    try {
      await fn(b);
    } finally {
      await b.close();
    }
  };

  test(`${name}: counts by day, account and model; reads are immediate; bad deltas count nothing`, withBackend(async (b) => {
    const u = await b.open();
    u.add('2026-01-01', 'a', 'm', { requests: 1 });
    u.add('2026-01-02', 'a', 'm', { requests: 2, tokens_in: 5 });
    u.add('2026-01-02', 'a', 'm', { requests: 1, tokens_out: 7 });
    u.add('2026-01-02', 'b', 'm', { requests: 3, tokens_out: -4 });
    u.add('2026-01-02', 'b', 'm', { requests: Number.NaN, tokens_in: Infinity });
    assert.deepEqual(u.get('2026-01-02', 'a', 'm'), { requests: 3, tokens_in: 5, tokens_out: 7 }, 'seen before anything is written');
    assert.deepEqual(u.get('2026-01-02', 'b', 'm'), { requests: 3, tokens_in: 0, tokens_out: 0 });
    assert.deepEqual(u.get('2026-01-09', 'a', 'm'), { requests: 0, tokens_in: 0, tokens_out: 0 });
    assert.equal(u.records('2026-01-02').length, 2);
    assert.deepEqual(u.records('2026-01-01', 'a').map((r) => r.date), ['2026-01-01', '2026-01-02']);
    u.prune('2026-01-02');
    assert.deepEqual(sorted(u.records('0000')).map((r) => `${r.date} ${r.account_id}`), ['2026-01-02 a', '2026-01-02 b']);
    await u.close();
  }));

  if (traits.durable) {
    test(`${name}: every count comes back after a restart, whatever the names`, withBackend(async (b) => {
      const u = await b.open();
      const cases: [string, string, string, number][] = [
        ['2026-01-02', 'a', 'gemini-2.5-pro', 3],
        ['2026-01-02', 'b', '__proto__', 5],
        ['2026-01-03', 'constructor', 'm "quoted" ü', 2],
      ];
      for (const [date, acct, model, n] of cases) for (let i = 0; i < n; i++) u.add(date, acct, model, { requests: 1, tokens_in: 10 });
      await u.close();
      const again = await b.open();
      assert.deepEqual(sorted(again.records('0000')), sorted(cases.map(([date, account_id, model, n]) => ({ date, account_id, model, requests: n, tokens_in: n * 10, tokens_out: 0 }))));
      await again.close();
    }));
  }

  test(`${name}: a retired day leaves memory but not the history${traits.durable ? ', also after a restart' : ''}`, withBackend(async (b) => {
    const u = await b.open();
    u.add('2026-01-01', 'a', 'm', { requests: 2, tokens_in: 20 });
    u.add('2026-01-01', 'b', 'm', { requests: 1 });
    u.add('2026-01-03', 'a', 'm', { requests: 5 });
    await u.flush();
    u.retire('2026-01-02');
    await u.flush();
    const all = [
      { date: '2026-01-01', account_id: 'a', model: 'm', requests: 2, tokens_in: 20, tokens_out: 0 },
      { date: '2026-01-01', account_id: 'b', model: 'm', requests: 1, tokens_in: 0, tokens_out: 0 },
      { date: '2026-01-03', account_id: 'a', model: 'm', requests: 5, tokens_in: 0, tokens_out: 0 },
    ];
    if (traits.durable) assert.deepEqual(u.records('0000').map((r) => r.date), ['2026-01-03'], 'only the open day is held in memory');
    assert.deepEqual(sorted(await u.history('0000')), all);
    assert.deepEqual(await u.history('2026-01-01', 'a'), [all[0], all[2]], 'one account, oldest day first');
    assert.deepEqual(await u.history('2026-01-02'), [all[2]]);
    u.add('2026-01-03', 'a', 'm', { requests: 1 });
    await u.close();
    if (!traits.durable) return;
    const again = await b.open();
    again.retire('2026-01-02');
    assert.deepEqual(sorted(await again.history('0000')), [all[0], all[1], { ...all[2], requests: 6 }], 'each count once after a restart');
    again.prune('2026-01-02');
    assert.deepEqual(await again.history('0000'), [{ ...all[2], requests: 6 }], 'pruned days are gone from storage too');
    await again.close();
  }));

  if (traits.shared) {
    test(`${name}: counts made by one gateway reach the other within 2 s, and both add up on one row exactly`, withBackend(async (b) => {
      const one = await b.open();
      const two = await b.open();
      const rev = two.revision;
      for (let i = 0; i < 40; i++) (i % 2 ? one : two).add('2026-02-01', 'acct', 'flash', { requests: 1, tokens_in: 3, tokens_out: 1 });
      one.add('2026-02-01', 'only-one', 'pro', { requests: 2 });
      const both = (u: UsageStore) => u.get('2026-02-01', 'acct', 'flash').requests === 40 && u.get('2026-02-01', 'only-one', 'pro').requests === 2;
      await eventually('both see 40 + 2', () => both(one) && both(two));
      assert.deepEqual(two.get('2026-02-01', 'acct', 'flash'), { requests: 40, tokens_in: 120, tokens_out: 40 });
      assert.ok(two.revision > rev, 'the revision says counts arrived from elsewhere');
      await Promise.all([one.close(), two.close()]);
      const three = await b.open();
      assert.equal(three.get('2026-02-01', 'acct', 'flash').requests, 40, 'a gateway that starts later reads the totals');
      await three.close();
    }));
  }
}
