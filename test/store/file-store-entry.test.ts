import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryTable } from '../../src/store/file-store-types.ts';
import { fakeAccount } from '../support/fake-accounts.ts';

// The store tells an unchanged file from a changed one by these two numbers: a part lost in
// how the table keeps them would re-read every file at each rescan, or miss a change.
test('file store entries: the file hash (48 bits) and signature (53 bits) come back exactly, whatever their size', () => {
  const a = fakeAccount('a');
  const table = new EntryTable();
  for (const hash of [0, 1, 2 ** 24 - 1, 2 ** 24, 2 ** 31, 2 ** 47 + 12345, 2 ** 48 - 1]) {
    for (const sig of [null, 0, 2 ** 31 - 1, 2 ** 31, 2 ** 52 + 7, 2 ** 53 - 1]) {
      table.set(a.id, { account: a, rawHash: hash, sig, lock: null, stored: a });
      assert.equal(table.get(a.id)!.rawHash, hash);
      assert.equal(table.get(a.id)!.sig, sig);
      assert.equal(table.sig(a.id), sig);
      table.setSig(a.id, 2 ** 40 + 3);
      assert.equal(table.sig(a.id), 2 ** 40 + 3);
      assert.equal(table.get(a.id)!.rawHash, hash, 'a new signature leaves the hash');
    }
  }
  assert.equal(table.sig('nobody'), undefined);
});

test('file store entries: each id keeps its own account, stored form and lock as others come and go', () => {
  const table = new EntryTable();
  const accounts = Array.from({ length: 1000 }, (_, i) => fakeAccount(`acct-${i}`));
  const lock = { keyId: 'k', why: 'unknown_key' as const, reason: 'r' };
  const sealedOf = (a: (typeof accounts)[number]) => ({ ...a, token: { ...a.token, refresh_token: 'sealed' } });
  const sealed = new Map(accounts.filter((_, i) => i % 7 === 0).map((a) => [a.id, sealedOf(a)]));
  accounts.forEach((a, i) => {
    const stored = sealed.get(a.id) ?? a;
    table.set(a.id, { account: a, rawHash: i, sig: i > 500 ? null : i, lock: i % 14 === 0 ? lock : null, stored });
  });
  for (let i = 999; i >= 0; i -= 3) table.delete(accounts[i]!.id); // the first one, sealed and locked, last
  const extra = fakeAccount('extra');
  table.set(extra.id, { account: extra, rawHash: 7, sig: 8, lock: null, stored: extra }); // takes that freed slot
  table.set(accounts[14]!.id, { account: accounts[14]!, rawHash: 99, sig: 98, lock: null, stored: accounts[14]! }); // sealed and locked, written back plain

  const left = accounts.filter((_, i) => i % 3 !== 0);
  assert.equal(table.size, left.length + 1);
  assert.deepEqual(table.accounts().map((a) => a.id), [...left.map((a) => a.id), 'extra'], 'in the order first set, like a Map');
  assert.deepEqual([...table.ids()], [...left.map((a) => a.id), 'extra']);
  for (const a of left) {
    const i = accounts.indexOf(a);
    const e = table.get(a.id)!;
    assert.equal(e.account, a);
    if (i === 14) {
      assert.deepEqual([e.rawHash, e.sig, e.lock, e.stored], [99, 98, null, a]);
      continue;
    }
    assert.equal(e.rawHash, i);
    assert.equal(e.sig, i > 500 ? null : i);
    assert.equal(e.lock, i % 14 === 0 ? lock : null);
    assert.equal(e.stored, sealed.get(a.id) ?? a, 'plain: stored as it is');
  }
  assert.equal(table.get(accounts[0]!.id), undefined);
  assert.equal(table.has(accounts[0]!.id), false);
  assert.deepEqual(table.get('extra'), { account: extra, rawHash: 7, sig: 8, lock: null, stored: extra }, 'a freed slot keeps nothing of its last entry');
});
