// One contract for every SharedState backend (in-process and PostgreSQL):
// what OAuth flows, dashboard sessions and shared cooldowns rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SharedState } from '../../src/store/shared-state.ts';

/** `open` gives two handles on one shared state (two gateways; the same object twice for a single process). */
export function sharedStateContract(name: string, open: () => Promise<{ a: SharedState; b: SharedState; close: () => Promise<void> }>): void {
  const withPair = (fn: (a: SharedState, b: SharedState) => Promise<void>) => async () => {
    const { a, b, close } = await open();
    try {
      await fn(a, b);
    } finally {
      await close();
    }
  };

  test(`${name}: a value set by one is read by the other until it expires`, withPair(async (a, b) => {
    await a.kv.set('flow', 's1', { verifier: 'v', n: 1 }, Date.now() + 60_000);
    assert.deepEqual(await b.kv.get('flow', 's1'), { verifier: 'v', n: 1 });
    assert.equal(await b.kv.get('other-ns', 's1'), null, 'namespaces are apart');
    await a.kv.set('flow', 'gone', 'x', Date.now() - 1);
    assert.equal(await b.kv.get('flow', 'gone'), null, 'expired reads as absent');
    await b.kv.delete('flow', 's1');
    assert.equal(await a.kv.get('flow', 's1'), null);
  }));

  test(`${name}: update is read-modify-write with no lost update across handles`, withPair(async (a, b) => {
    const bump = (s: SharedState) =>
      s.kv.update<number, number>('count', 'k', (n) => ({ value: (n ?? 0) + 1, expiresAtMs: Date.now() + 60_000, result: (n ?? 0) + 1 }));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => bump(i % 2 ? a : b)));
    assert.equal(await a.kv.get('count', 'k'), 30);
    assert.deepEqual([...results].sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i + 1));
  }));

  test(`${name}: take-once through update: exactly one of many takers wins`, withPair(async (a, b) => {
    await a.kv.set('flow', 'once', { used: false }, Date.now() + 60_000);
    const take = (s: SharedState) =>
      s.kv.update<{ used: boolean }, boolean>('flow', 'once', (f) => (f && !f.used ? { value: { used: true }, expiresAtMs: Date.now() + 60_000, result: true } : { result: false }));
    const wins = await Promise.all([take(a), take(b), take(a), take(b)]);
    assert.equal(wins.filter(Boolean).length, 1);
  }));

  test(`${name}: an event published by one reaches the subscribers of both`, withPair(async (a, b) => {
    const got = (s: SharedState) =>
      new Promise<unknown>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no event within 2 s')), 2000);
        const stop = s.events.subscribe('cooldown', (p) => {
          clearTimeout(t);
          stop();
          resolve(p);
        });
      });
    const onA = got(a);
    const onB = got(b);
    await Promise.all([a.events.ready(), b.events.ready()]); // LISTEN is set up
    await a.events.publish('cooldown', { lane: 'gemini_api:p1', model: 'm', until: 123 });
    assert.deepEqual(await onA, { lane: 'gemini_api:p1', model: 'm', until: 123 });
    assert.deepEqual(await onB, { lane: 'gemini_api:p1', model: 'm', until: 123 });
  }));
}
