// Reading a JSON request body: bad UTF-8 is a 400 saying so, a byte order mark is allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { readJsonWithRaw } from '../../src/http/http-util.ts';

function request(bytes: Buffer): IncomingMessage {
  const s = new PassThrough() as unknown as IncomingMessage & PassThrough;
  Object.assign(s, { headers: { 'content-length': String(bytes.length) }, complete: false });
  queueMicrotask(() => s.end(bytes));
  return s;
}

test('a JSON body is parsed and its bytes kept; a leading byte order mark is allowed', async () => {
  const plain = Buffer.from('{"model":"claude-x","text":"héllo ✓"}');
  assert.deepEqual((await readJsonWithRaw(request(plain), 1000)).body, { model: 'claude-x', text: 'héllo ✓' });
  const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), plain]);
  const r = await readJsonWithRaw(request(withBom), 1000);
  assert.deepEqual(r.body, { model: 'claude-x', text: 'héllo ✓' });
  assert.equal(r.raw.length, withBom.length);
});

test('a body that is not UTF-8 is a 400 invalid_utf8 (a lone continuation byte, an encoded surrogate, a cut sequence)', async () => {
  for (const bad of [[0x7b, 0x80, 0x7d], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xe2, 0x9c]]) {
    await assert.rejects(readJsonWithRaw(request(Buffer.from(bad)), 1000), (e: { status?: number; code?: string }) => e.status === 400 && e.code === 'invalid_utf8');
  }
});
