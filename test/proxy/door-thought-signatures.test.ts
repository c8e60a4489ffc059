import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createThoughtSignatureCache, decodeThinkingSignature, encodeThinkingSignature, fillMissingFunctionCallSignatures, SKIP_THOUGHT_SIGNATURE_VALIDATOR,
} from '../../src/proxy/thought-signatures.ts';

test('the signature cache is a bounded LRU', () => {
  const cache = createThoughtSignatureCache({ maxEntries: 3 });
  cache.remember('a', 'A');
  cache.remember('b', 'B');
  cache.remember('c', 'C');
  assert.equal(cache.recall('a'), 'A'); // a is now the most recent
  cache.remember('d', 'D'); // evicts b, the least recently used
  assert.equal(cache.size, 3);
  assert.equal(cache.recall('b'), undefined);
  assert.deepEqual(['a', 'c', 'd'].map((k) => cache.recall(k)), ['A', 'C', 'D']);
  const big = createThoughtSignatureCache();
  for (let i = 0; i < 10_050; i++) big.remember(`k${i}`, 's');
  assert.equal(big.size, 10_000);
});

test('thinking signatures round-trip and foreign ones are not ours', () => {
  const sig = encodeThinkingSignature({ thought: 'T', next: 'N' });
  assert.deepEqual(decodeThinkingSignature(sig), { thought: 'T', next: 'N' });
  assert.equal(decodeThinkingSignature('EqQBCkgIARAB'), null);
  assert.equal(decodeThinkingSignature('gp1.!!!'), null);
});

test('a lost function call signature gets the documented placeholder, on the first call of a turn only', () => {
  const contents = [
    { role: 'user', parts: [{ text: 'x' }] },
    { role: 'model', parts: [{ text: 'ok' }, { functionCall: { name: 'a', args: {} } }, { functionCall: { name: 'b', args: {} } }] },
    { role: 'model', parts: [{ functionCall: { name: 'c', args: {} }, thoughtSignature: 'REAL' }] },
  ];
  assert.equal(fillMissingFunctionCallSignatures(contents), 1);
  assert.equal((contents[1]!.parts[1] as any).thoughtSignature, SKIP_THOUGHT_SIGNATURE_VALIDATOR);
  assert.equal((contents[1]!.parts[2] as any).thoughtSignature, undefined);
  assert.equal((contents[2]!.parts[0] as any).thoughtSignature, 'REAL');
});
