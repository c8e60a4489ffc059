// GET /metrics through the real gateway: what an operator's Prometheus sees
// after real traffic, and who may read it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
  stack.issuer.addUser({ email: 'm1@example.com', name: 'M1' });
  assert.equal((await stack.addAccount('m1@example.com')).status, 200);
});
after(() => stack.close());

const scrape = async (token?: string) => {
  const res = await fetch(`${stack.gateway.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};
const value = (text: string, series: string): number | null => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : null;
};

test('requests, latency, accounts by state and refreshes by outcome are counted', async () => {
  const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
  for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `hi ${i}` }] });
  await assert.rejects(client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [] }));
  // An expired token: the next request refreshes it.
  const [account] = await stack.gateway.store.list();
  await stack.gateway.store.update(account!.id, (a) => ({ ...a, token: { ...a.token, expiry_timestamp: Math.floor(Date.now() / 1000) - 5 } }));
  await new Promise((r) => setTimeout(r, 100));
  await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'after expiry' }] });

  const m = await scrape(stack.env.GRANTPOOL_ADMIN_TOKEN);
  assert.equal(m.status, 200);
  assert.match(m.type!, /^text\/plain; version=0\.0\.4/);
  assert.equal(value(m.text, 'grantpool_requests_total{door="openai",model="gemini-2.5-flash",status="200",lane=""}'), 4, m.text.slice(0, 2000));
  assert.equal(value(m.text, 'grantpool_requests_total{door="openai",model="",status="400",lane=""}'), 1, 'a request refused before its model was read');
  assert.equal(value(m.text, 'grantpool_request_duration_seconds_count{door="openai"}'), 5);
  assert.equal(value(m.text, 'grantpool_upstream_first_byte_seconds_count{door="openai"}'), 4, 'the request refused by the gateway had no upstream byte');
  assert.equal(value(m.text, 'grantpool_accounts{state="active"}'), 1);
  assert.equal(value(m.text, 'grantpool_accounts{state="disabled"}'), 0);
  assert.equal(value(m.text, 'grantpool_refreshes_total{outcome="ok"}'), 1);
  assert.equal(value(m.text, 'grantpool_token_endpoint_duration_seconds_count'), 1);
  assert.equal(value(m.text, 'grantpool_store_up'), 1);
  assert.ok(!m.text.includes(account!.token.refresh_token) && !m.text.includes('m1@example.com'), 'no token, no email');
});

test('the admin token is required unless metrics_public', async () => {
  assert.equal((await scrape()).status, 401);
  assert.equal((await scrape('wrong-token-0123456789')).status, 401);
  const path = join(stack.dataDir, 'config.json');
  const config = JSON.parse(await readFile(path, 'utf8'));
  await writeFile(path, JSON.stringify({ ...config, metrics_public: true }));
  await stack.restartGateway();
  const open = await scrape();
  assert.equal(open.status, 200);
  assert.match(open.text, /^# HELP grantpool_requests_total /m);
});
