import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  quotaDay,
  nextQuotaResetMs,
  limitForModel,
  isQuotaProtected,
  remainingPercent,
  wildcardMatch,
  quotaDayKeyBefore,
  pacificOffsetMs,
} from '../../src/pool/quota.ts';
import { MemoryUsageStore } from '../../src/pool/usage.ts';
import { FileUsageStore } from '../../src/pool/usage-file.ts';
import { fakeAccount, poolHarness } from '../support/fake-accounts.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { NoAccountError } from '../../src/pool/types.ts';

const iso = (ms: number) => new Date(ms).toISOString();

test('quota day: midnight America/Los_Angeles, standard and daylight time', () => {
  // winter: UTC-8
  let d = quotaDay(Date.parse('2026-01-15T20:00:00Z'));
  assert.equal(d.key, '2026-01-15');
  assert.equal(iso(d.start), '2026-01-15T08:00:00.000Z');
  assert.equal(iso(d.end), '2026-01-16T08:00:00.000Z');
  // summer: UTC-7
  d = quotaDay(Date.parse('2026-07-01T06:59:59Z'));
  assert.equal(d.key, '2026-06-30');
  assert.equal(iso(d.end), '2026-07-01T07:00:00.000Z');
  // the day clocks spring forward (2026-03-08) is 23 hours long
  d = quotaDay(Date.parse('2026-03-08T12:00:00Z'));
  assert.equal(d.key, '2026-03-08');
  assert.equal(d.end - d.start, 23 * 3600_000);
  // the day clocks fall back (2026-11-01) is 25 hours long
  d = quotaDay(Date.parse('2026-11-01T12:00:00Z'));
  assert.equal(d.key, '2026-11-01');
  assert.equal(d.end - d.start, 25 * 3600_000);
  assert.equal(iso(nextQuotaResetMs(Date.parse('2026-11-01T12:00:00Z'))), '2026-11-02T08:00:00.000Z');
  // the boundary itself belongs to the new day
  assert.equal(quotaDay(Date.parse('2026-01-16T08:00:00Z')).key, '2026-01-16');
  assert.equal(quotaDay(Date.parse('2026-01-16T07:59:59.999Z')).key, '2026-01-15');
  assert.equal(quotaDayKeyBefore(Date.parse('2026-03-01T20:00:00Z'), 1), '2026-02-28');
});

test('quota day: the written-out Pacific rule agrees with ICU every half hour, 2007-2045, and every minute around each change', () => {
  // ICU's answer (the runtime's time zone data): the wall clock in Los Angeles.
  const la = new Intl.DateTimeFormat('en-US', {
    timeZone: 'America/Los_Angeles', hourCycle: 'h23',
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  });
  const icuWall = (ms: number) => {
    const p = Object.fromEntries(la.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
  };
  const ourWall = (ms: number) => new Date(ms + pacificOffsetMs(ms)).toISOString().slice(0, 16);
  const mismatches: string[] = [];
  const check = (ms: number) => {
    if (ourWall(ms) !== icuWall(ms)) mismatches.push(`${iso(ms)}: ours ${ourWall(ms)}, ICU ${icuWall(ms)}`);
  };
  let changes = 0;
  for (let ms = Date.UTC(2007, 0, 1); ms < Date.UTC(2045, 0, 1); ms += 1_800_000) {
    check(ms);
    if (pacificOffsetMs(ms) !== pacificOffsetMs(ms + 1_800_000)) {
      changes++;
      for (let m = ms - 3_600_000; m <= ms + 7_200_000; m += 60_000) check(m);
    }
  }
  assert.deepEqual(mismatches.slice(0, 5), []);
  assert.equal(changes, 2 * 38, 'two changes a year');
  // Quota days agree with ICU's calendar date, and start at ICU's local midnight.
  for (let ms = Date.UTC(2024, 0, 1, 3); ms < Date.UTC(2030, 0, 1); ms += 5 * 3_600_000) {
    const d = quotaDay(ms);
    assert.equal(d.key, icuWall(ms).slice(0, 10), iso(ms));
    assert.equal(icuWall(d.start), `${d.key}T00:00`, iso(ms));
    assert.equal(icuWall(d.start - 60_000).slice(11), '23:59', iso(ms));
    assert.equal(quotaDay(d.end).start, d.end);
  }
});

test('quota limits: exact model key first, else the most specific wildcard', () => {
  const limits = {
    'gemini-2.5-pro': { requests_per_day: 100 },
    'gemini-2.5-*': { requests_per_day: 500 },
    'gemini-2.5-flash*': { tokens_per_day: 1_000_000 },
    '*': { requests_per_day: 9999 },
  };
  assert.deepEqual(limitForModel('gemini-2.5-pro', limits), { requests_per_day: 100 });
  assert.deepEqual(limitForModel('gemini-2.5-flash-lite', limits), { tokens_per_day: 1_000_000 });
  assert.deepEqual(limitForModel('gemini-2.5-computer', limits), { requests_per_day: 500 });
  assert.deepEqual(limitForModel('other', limits), { requests_per_day: 9999 });
  assert.equal(limitForModel('x', {}), null);
  assert.ok(wildcardMatch('a.b*', 'a.bc'));
  assert.ok(!wildcardMatch('a.b*', 'axbc'), 'dots are literal');
});

test('quota protection: kept out when the remaining share is below the threshold (requests or tokens)', () => {
  const limit = { requests_per_day: 100, tokens_per_day: 10_000 };
  const u = (requests: number, tokens = 0) => ({ requests, tokens_in: tokens, tokens_out: 0 });
  assert.equal(remainingPercent(u(0), limit), 100);
  assert.equal(isQuotaProtected(u(89), limit, 10), false);
  assert.equal(isQuotaProtected(u(90), limit, 10), false, '10% left is not below 10%');
  assert.equal(isQuotaProtected(u(91), limit, 10), true);
  assert.equal(isQuotaProtected(u(1, 9_500), limit, 10), true, 'the tokens limit counts too');
  assert.equal(isQuotaProtected(u(100), limit, 0), true, 'an exhausted quota is out even at threshold 0');
  assert.equal(isQuotaProtected(u(1000), null, 10), false);
});

test('pool with quota protection: accounts near their daily limit are kept out for that model until the reset', async () => {
  // each on its own project: quota is counted per project (lane)
  const h = await poolHarness([fakeAccount('a', { project_id: 'project-a' }), fakeAccount('b', { project_id: 'project-b' })], {
    config: { quota_protection: { enabled: true, threshold_percent: 20, limits: { 'gemini-*-flash': { requests_per_day: 10 } } } },
  });
  // 8 requests on each account: 20% left is not below 20%; the 9th tips it
  for (let i = 0; i < 18; i++) {
    const l = await h.pool.acquire({ model: 'gemini-2.5-flash' });
    h.pool.report(l, 'gemini-2.5-flash', { kind: 'ok', tokensIn: 1, tokensOut: 1 });
  }
  const reset = Date.parse('2026-01-16T08:00:00Z');
  assert.deepEqual(h.pool.stateOf('a'), { state: 'quota_protected', model: 'gemini-2.5-flash', until: reset / 1000 });
  await assert.rejects(h.pool.acquire({ model: 'gemini-2.5-flash' }), (e: NoAccountError) => {
    assert.equal(e.code, 'all_cooling_down');
    assert.equal(e.status, 429);
    assert.equal(e.retryAfterSeconds, (reset - h.clock.now()) / 1000);
    return true;
  });
  assert.ok(await h.pool.acquire({ model: 'gemini-2.5-pro' }), 'a model without a limit is not affected');
  h.clock.set(reset);
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
  assert.ok(await h.pool.acquire({ model: 'gemini-2.5-flash' }));
  // history for the chart
  const rows = await h.pool.usage({ days: 2 });
  assert.deepEqual(rows.map((r) => [r.date, r.account_id, r.requests]), [
    ['2026-01-15', 'a', 9],
    ['2026-01-15', 'b', 9],
  ]);
});

test('quota protection is off by default', async () => {
  const h = await poolHarness([fakeAccount('a')], { config: { quota_protection: { enabled: false, threshold_percent: 50, limits: { '*': { requests_per_day: 1 } } } } });
  for (let i = 0; i < 5; i++) {
    const l = await h.pool.acquire({ model: 'm' });
    h.pool.report(l, 'm', { kind: 'ok' });
  }
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
});

test('usage file: debounced atomic writes, survives a restart (and quota protection with it)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-'));
  try {
    const clock = new FakeClock(Date.parse('2026-01-15T20:00:00Z'));
    const usage = new FileUsageStore(dir, { debounceMs: 10_000 });
    const config = { quota_protection: { enabled: true, threshold_percent: 10, limits: { flash: { requests_per_day: 5 } } } };
    const h = await poolHarness([fakeAccount('a')], { usage, clock, config });
    for (let i = 0; i < 5; i++) {
      const l = await h.pool.acquire({ model: 'flash' });
      h.pool.report(l, 'flash', { kind: 'ok', tokensIn: 3, tokensOut: 4 });
    }
    await assert.rejects(readFile(join(dir, 'usage.json'), 'utf8'), 'not written per request');
    await h.pool.stop(); // flushes
    const saved = JSON.parse(await readFile(join(dir, 'usage.json'), 'utf8'));
    assert.deepEqual(saved.days['2026-01-15'].a.flash, { requests: 5, tokens_in: 15, tokens_out: 20 });

    const again = new FileUsageStore(dir);
    const h2 = await poolHarness([], { usage: again, clock, config, store: h.store });
    assert.equal(h2.pool.stateOf('a')!.state, 'quota_protected');
    assert.deepEqual(h2.pool.usageToday('a'), { requests: 5, tokens: 35 });
    await h2.pool.stop();

    // a damaged file does not stop the start
    await writeFile(join(dir, 'usage.json'), '{nope');
    const errors: string[] = [];
    const damaged = new FileUsageStore(dir, { onError: (e) => errors.push(e.message) });
    await damaged.load();
    assert.equal(damaged.records('0000').length, 0);
    assert.match(errors[0]!, /not valid JSON/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('usage file: every account and model comes back after a restart, whatever their names', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-'));
  try {
    const u = new FileUsageStore(dir, { debounceMs: 10_000 });
    await u.load();
    const cases: [string, string, string, number][] = [
      ['2026-01-01', 'a', 'gemini-2.5-flash', 1],
      ['2026-01-01', 'a', 'gemini-2.5-pro', 2],
      ['2026-01-01', 'b', 'gemini-2.5-flash', 3],
      ['2026-01-02', '__proto__', 'constructor', 4],
      ['2026-01-02', 'b', '__proto__', 5],
    ];
    for (const [date, acct, model, n] of cases) u.add(date, acct, model, { requests: n, tokens_in: n * 10 });
    await u.close();
    const again = new FileUsageStore(dir);
    await again.load();
    const sorted = (rs: { date: string; account_id: string; model: string }[]) =>
      [...rs].sort((x, y) => `${x.date} ${x.account_id} ${x.model}`.localeCompare(`${y.date} ${y.account_id} ${y.model}`));
    assert.deepEqual(sorted(again.records('0000')), sorted(cases.map(([date, account_id, model, n]) => ({ date, account_id, model, requests: n, tokens_in: n * 10, tokens_out: 0 }))));
    assert.deepEqual(again.records('2026-01-02', 'b'), [{ date: '2026-01-02', account_id: 'b', model: '__proto__', requests: 5, tokens_in: 50, tokens_out: 0 }]);
    assert.equal(({} as Record<string, unknown>).requests, undefined, 'nothing leaked onto Object.prototype');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('usage store: records by day and account; prune drops old days', () => {
  const u = new MemoryUsageStore();
  u.add('2026-01-01', 'a', 'm', { requests: 1 });
  u.add('2026-01-02', 'a', 'm', { requests: 2, tokens_in: 5 });
  u.add('2026-01-02', 'b', 'm', { requests: 3, tokens_out: -4 });
  assert.deepEqual(u.get('2026-01-02', 'a', 'm'), { requests: 2, tokens_in: 5, tokens_out: 0 });
  assert.deepEqual(u.get('2026-01-09', 'a', 'm'), { requests: 0, tokens_in: 0, tokens_out: 0 });
  assert.equal(u.records('2026-01-02').length, 2);
  assert.equal(u.records('2026-01-01', 'a').length, 2);
  u.prune('2026-01-02');
  assert.equal(u.records('0000').length, 2);
});

test('quota protection counts generate requests only: count-tokens, embeddings and model lists do not use up the daily share (their tokens are still recorded)', async () => {
  const h = await poolHarness([fakeAccount('a')], {
    config: { quota_protection: { enabled: true, threshold_percent: 10, limits: { flash: { requests_per_day: 3 } } } },
  });
  // Claude Code calls count_tokens before nearly every message
  for (let i = 0; i < 20; i++) {
    const l = await h.pool.acquire({ model: 'flash' });
    h.pool.report(l, 'flash', { kind: 'ok', tokensIn: 5, counts: false });
  }
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
  assert.deepEqual(h.pool.usageToday('a'), { requests: 0, tokens: 100 });
  // a report without the flag is a generate request, as before
  for (let i = 0; i < 3; i++) {
    const l = await h.pool.acquire({ model: 'flash' });
    h.pool.report(l, 'flash', { kind: 'ok', tokensIn: 1 });
  }
  assert.equal(h.pool.stateOf('a')!.state, 'quota_protected');
  assert.deepEqual(h.pool.usageToday('a'), { requests: 3, tokens: 103 });
});

test('a gateway that runs for days holds only today in memory; the 30-day history still shows every day', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-days-'));
  try {
    const usage = new FileUsageStore(dir, { debounceMs: 60_000 });
    const h = await poolHarness([fakeAccount('a')], { usage });
    const day = 24 * 3600_000;
    for (let d = 0; d < 4; d++) {
      if (d > 0) h.clock.advance(day);
      h.pool.tick();
      for (let i = 0; i <= d; i++) {
        const l = await h.pool.acquire({ model: 'gemini-2.5-flash' });
        h.pool.report(l, 'gemini-2.5-flash', { kind: 'ok', tokensIn: 1, tokensOut: 1 });
      }
    }
    await usage.flush();
    assert.deepEqual(usage.records('0000').map((r) => [r.date, r.requests]), [['2026-01-18', 4]], 'only today is held');
    const rows = await h.pool.usage({ days: 30 });
    assert.deepEqual(rows.map((r) => [r.date, r.requests]), [['2026-01-15', 1], ['2026-01-16', 2], ['2026-01-17', 3], ['2026-01-18', 4]]);
    assert.deepEqual((await h.pool.usage({ days: 2 })).map((r) => r.date), ['2026-01-17', '2026-01-18']);
    await h.pool.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
