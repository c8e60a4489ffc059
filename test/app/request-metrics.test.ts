// The request metrics kept outside prom-client read the same on a scrape as
// prom-client's own Counter and Histogram fed the same requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { BufferedCounter, OneLabelHistogram } from '../../src/app/request-metrics.ts';

const BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

test('a scrape shows the same text as prom-client for the same observations, across scrapes', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const counter = new BufferedCounter({ name: 'x_requests_total', help: 'Requests', labelNames: ['door', 'model', 'status', 'lane'] as const, registers: [ours] });
  const histogram = new OneLabelHistogram({ name: 'x_duration_seconds', help: 'Time', label: 'door', buckets: BUCKETS, registers: [ours] });
  const refCounter = new Counter({ name: 'x_requests_total', help: 'Requests', labelNames: ['door', 'model', 'status', 'lane'] as const, registers: [theirs] });
  const refHistogram = new Histogram({ name: 'x_duration_seconds', help: 'Time', labelNames: ['door'] as const, buckets: BUCKETS, registers: [theirs] });
  const feed = (door: string, model: string, status: number, lane: string, seconds: number) => {
    counter.inc(door, model, status, lane);
    histogram.observe(door, seconds);
    refCounter.inc({ door, model, status: String(status), lane });
    refHistogram.observe({ door }, seconds);
  };
  assert.equal(await ours.metrics(), await theirs.metrics(), 'nothing observed yet');
  feed('gemini', 'gemini-2.5-flash', 200, 'gemini_api:p1', 0.012);
  feed('openai', 'gemini-2.5-flash', 200, '', 0.3);
  feed('gemini', 'gemini-2.5-flash', 200, 'gemini_api:p1', 0.05);
  feed('gemini', 'gemini-2.5-pro', 429, 'gemini_api:p2', 500);
  feed('anthropic', 'say "hi"\\', 400, '', 2.5);
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (let i = 0; i < 50; i++) feed('openai', 'gemini-2.5-flash', i % 7 ? 200 : 502, '', i / 10);
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics(), 'a second scrape adds only what came since the first');
  assert.match(text, /^x_duration_seconds_bucket\{le="0\.5",door="openai"\} 7$/m);
  assert.match(text, /^x_requests_total\{door="openai",model="gemini-2\.5-flash",status="502",lane=""\} 8$/m);
});
