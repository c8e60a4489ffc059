import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryOf } from '../../src/store/file-store-types.ts';
import { fakeAccount } from '../support/fake-accounts.ts';

// The store tells an unchanged file from a changed one by these two numbers: a part lost in
// how an entry keeps them would re-read every file at each rescan, or miss a change.
test('file store entry: the file hash (48 bits) and signature (53 bits) come back exactly, whatever their size', () => {
  const a = fakeAccount('a');
  for (const hash of [0, 1, 2 ** 24 - 1, 2 ** 24, 2 ** 31, 2 ** 47 + 12345, 2 ** 48 - 1]) {
    for (const sig of [null, 0, 2 ** 31 - 1, 2 ** 31, 2 ** 52 + 7, 2 ** 53 - 1]) {
      const e = entryOf(a, hash, sig, null, a);
      assert.equal(e.rawHash, hash);
      assert.equal(e.sig, sig);
      e.sig = sig === null ? 2 ** 40 + 3 : null;
      assert.equal(e.sig, sig === null ? 2 ** 40 + 3 : null);
    }
  }
  assert.equal(entryOf(a, 5, 6, null, a).stored, a, 'plain: stored as it is');
  const stored = { ...a, token: { ...a.token, refresh_token: 'sealed' } };
  const lock = { keyId: 'k', why: 'unknown_key' as const, reason: 'r' };
  const sealed = entryOf(a, 5, 6, lock, stored);
  assert.equal(sealed.stored, stored);
  assert.equal(sealed.lock, lock);
});
