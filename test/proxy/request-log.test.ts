import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequestLog, type RequestLogEntry } from '../../src/proxy/request-log.ts';

const NOW = 1_800_000_000_000;

function entry(time: number, latency: number, route = '/v1/messages'): RequestLogEntry {
  return {
    time, route, protocol: 'anthropic', model_requested: 'claude-x', model_used: 'gemini-2.5-flash',
    account_id: 'a', email: 'a@example.com', status: 200, latency_ms: latency, first_byte_ms: 2, tokens_in: 1, tokens_out: 1,
    retries: 0, error: null,
  };
}

test('since finds requests that started after it even behind a long one that finished later (the ring is in finish order)', () => {
  const log = createRequestLog({ size: 10 });
  log.record(entry(NOW - 60_000, 10, '/old')); // started and finished long ago
  log.record(entry(NOW - 100, 50, '/short')); // started 100 ms ago, finished 50 ms ago
  log.record(entry(NOW - 30_000, 30_000, '/long')); // a 30 s stream that started before `since`, finished now
  const since = NOW - 1000;
  assert.deepEqual(log.query({ since }).map((e) => e.route), ['/short']);
  assert.equal(log.countSince(since), 1);
  assert.deepEqual(log.query({ since: NOW - 40_000 }).map((e) => e.route), ['/long', '/short']);
  assert.equal(log.countSince(NOW - 40_000), 2);
  assert.equal(log.countSince(NOW - 120_000), 3);
});
