// Several gateways on one PostgreSQL: an account added through one serves on
// the other, a PATCH on one stops the other from using the account within
// 1 s, usage counted on one is seen on all, and `grantpool store copy`
// moves every account both ways intact.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startGateway, type Gateway } from '../../src/app/gateway.ts';
import { createLogger } from '../../src/log/logger.ts';
import { main } from '../../src/cli/main.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { createPgStore } from '../../src/store/pg-store.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { freePort, LogCapture, startStack, type Stack } from '../support/stack.ts';
import { captureLogger, makeAccount } from '../support/store-fixtures.ts';
import { eventually } from '../support/eventually.ts';

const found = findPostgres();
const skip = typeof found === 'string' ? found : false;

describe('gateways on one PostgreSQL', { skip }, () => {
  let pg: TestPostgres;
  let stack: Stack;
  let b: Gateway;
  let c: Gateway;
  let bDir: string;
  let cDir: string;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
    const url = await pg.createDatabase('gateways');
    stack = await startStack({ env: { GRANTPOOL_DATABASE_URL: url } });
    // B and C: behind one public URL with A, as behind a load balancer (one redirect URI, one client_secret.json).
    const another = async (dir: string) =>
      startGateway({
        env: {
          ...stack.env,
          GRANTPOOL_DATA_DIR: dir,
          GRANTPOOL_PORT: String(await freePort()),
          GRANTPOOL_PUBLIC_URL: stack.gateway.config.public_base_url,
          GRANTPOOL_CLIENT_SECRET_FILE: stack.gateway.config.client_secret_path,
        },
        logger: createLogger({ destination: new LogCapture().stream, level: 'info' }),
      });
    bDir = await mkdtemp(join(tmpdir(), 'grantpool-b-'));
    cDir = await mkdtemp(join(tmpdir(), 'grantpool-c-'));
    b = await another(bDir);
    c = await another(cDir);
  });
  after(async () => {
    await b?.close();
    await c?.close();
    await stack?.close();
    for (const d of [bDir, cDir]) if (d) await rm(d, { recursive: true, force: true });
    pg?.destroy();
  });

  const ask = (g: Gateway, text: string) =>
    new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }).chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: text }],
    });

  test('a consent started on A finishes on B (state and PKCE verifier are in the database)', async () => {
    stack.issuer.addUser({ email: 'roamer@example.com', name: 'Roamer' });
    const { body } = await stack.api('POST', '/api/oauth/start', {});
    const callback = new URL(await stack.issuer.consent(body.auth_url, { email: 'roamer@example.com' }));
    const onB = new URL(callback.pathname + callback.search, b.url);
    const res = await fetch(onB, { redirect: 'manual' });
    assert.equal(res.status, 200, await res.text());
    assert.ok((await b.store.list()).some((a) => a.email === 'roamer@example.com'));
    const again = await fetch(onB, { redirect: 'manual' });
    assert.equal(again.status, 400, 'a state is used once, across gateways');
    await stack.api('DELETE', `/api/accounts/${(await b.store.list()).find((a) => a.email === 'roamer@example.com')!.id}`);
  });

  test('an account added on A serves on B, and a PATCH on A takes it out on B within 1 s', async () => {
    stack.issuer.addUser({ email: 'shared@example.com', name: 'Shared' });
    assert.equal((await stack.addAccount('shared@example.com')).status, 200);
    await eventually('B to see the new account within 1 s', () => b.pool.size === 1, 1000);
    const r = await ask(b, 'hello from B');
    assert.ok(r.choices[0]!.message.content);

    const [account] = (await stack.api('GET', '/api/accounts')).body.accounts;
    await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: true });
    await eventually('B to apply the PATCH within 1 s', () => b.pool.stateOf(account.id)?.state === 'proxy_disabled', 1000);
    await assert.rejects(ask(b, 'nobody left'), (e: { status?: number }) => e.status === 503 || e.status === 429);
  });
  test('an expired token and 300 concurrent requests over three gateways cause exactly one refresh', async () => {
    const account = (await b.store.list()).find((a) => a.email === 'shared@example.com')!;
    const gateways = [stack.gateway, b, c];
    const active = () => gateways.every((g) => g.pool.stateOf(account.id)?.state === 'active');
    await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: false });
    // Expired in the store (as after a night without traffic); every gateway hears of it.
    await stack.gateway.store.update(account.id, (a) => ({ ...a, token: { ...a.token, expiry_timestamp: Math.floor(Date.now() / 1000) - 10 } }));
    const expired = () => gateways.every((g) => g.pool.accounts().find((a) => a.id === account.id)!.token.expiry_timestamp <= Date.now() / 1000);
    await eventually('every gateway to see the account enabled and its token expired', () => active() && expired(), 2000);
    const before = stack.issuer.counters.refreshRequests;
    const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => ask(gateways[i % 3]!, `herd ${i}`)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 0, String((failed[0] as PromiseRejectedResult | undefined)?.reason));
    assert.equal(stack.issuer.counters.refreshRequests - before, 1, 'one refresh for the whole herd, across gateways');
  });

  test('usage is shared: /api/usage on B counts the requests served by A and C within 5 s (a second to send, a second to read, and slack for a loaded machine)', async () => {
    const account = (await b.store.list()).find((a) => a.email === 'shared@example.com')!;
    const total = async (g: Gateway) => {
      const res = await fetch(`${g.url}/api/usage?days=1`, { headers: { authorization: `Bearer ${stack.env.GRANTPOOL_ADMIN_TOKEN}` } });
      const body = (await res.json()) as { days: { account_id: string; requests: number }[] };
      return body.days.filter((r) => r.account_id === account.id).reduce((n, r) => n + r.requests, 0);
    };
    // What came before is sent and read everywhere within 2 s (a second to send, a second to read).
    const all = async () => Promise.all([stack.gateway, b, c].map(total));
    const agreed = await eventually('A, B and C to agree on the count before', async () => {
      const now = await all();
      return new Set(now).size === 1 && { count: now[0]! };
    }, 5000);
    const before = agreed.count;
    for (let i = 0; i < 30; i++) assert.ok((await ask(i % 2 ? stack.gateway : c, `counted ${i}`)).choices[0]!.message.content);
    // Each gateway reads the others' counts on its own schedule: each gets the 5 s.
    await Promise.all([
      eventually('B to see the 30 requests of A and C', async () => (await total(b)) === before + 30, 5000),
      eventually('C to see the 30 requests of A and its own', async () => (await total(c)) === before + 30, 5000),
    ]);
  });

  test('a 429 learned on A keeps B (and C) from calling that lane for that model', async () => {
    const account = (await b.store.list()).find((a) => a.email === 'shared@example.com')!;
    await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: false });
    await eventually('B to see the account enabled', () => b.pool.stateOf(account.id)?.state === 'active', 1000);
    const pro = (g: Gateway) =>
      new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }).chat.completions.create({
        model: 'gemini-2.5-pro',
        messages: [{ role: 'user', content: 'hi' }],
      });
    stack.upstream.failNext('*', 'rate_limited', { retryDelay: '30s', model: 'gemini-2.5-pro' });
    await assert.rejects(pro(stack.gateway), (e: { status?: number }) => e.status === 429);
    const cooling = (g: Gateway) => g.pool.stateOf(account.id)?.state === 'cooling_down';
    await eventually('B and C to learn the cooldown within 1 s', () => cooling(b) && cooling(c), 1000);
    const calls = stack.upstream.requests.length;
    await assert.rejects(pro(b), (e: { status?: number; headers?: Headers }) => e.status === 429);
    assert.equal(stack.upstream.requests.length, calls, 'B did not call the lane Google said to leave alone');
    const other = await ask(b, 'another model still works');
    assert.ok(other.choices[0]!.message.content, 'the cooldown is for that model only');
  });

  const admin = () => stack.env.GRANTPOOL_ADMIN_TOKEN!;
  const loginOn = (g: Gateway, token: string, from?: string) =>
    fetch(`${g.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: g.url, ...(from ? { 'x-forwarded-for': from } : {}) },
      body: new URLSearchParams({ token }).toString(),
    });
  /** A dashboard session opened on A, and its CSRF token as B's app page gives it. */
  const sessionFromAOnB = async () => {
    const res = await loginOn(stack.gateway, admin());
    assert.equal(res.status, 303);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const page = await (await fetch(`${b.url}/`, { headers: { cookie } })).text();
    const csrf = /<meta name="grantpool-csrf" content="([^"]+)">/.exec(page)?.[1];
    assert.ok(csrf, 'B serves the app page to the session opened on A');
    return { cookie, csrf };
  };
  /** Logs the session out on A, then waits (1 s at most) until B answers 401 to it. */
  const logoutOnAEndsOnB = async (cookie: string, csrf: string, what: string) => {
    const out = await fetch(`${stack.gateway.url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin: stack.gateway.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }).toString(),
    });
    assert.equal(out.status, 303);
    await eventually(what, async () => (await fetch(`${b.url}/api/accounts`, { headers: { cookie } })).status === 401, 1000);
  };

  test('a dashboard session opened on A works on B and C at once; a logout on A ends it everywhere', async () => {
    const { cookie, csrf } = await sessionFromAOnB();
    assert.equal((await fetch(`${c.url}/api/accounts`, { headers: { cookie } })).status, 200, 'C accepts it too');
    const account = (await b.store.list()).find((a) => a.email === 'shared@example.com')!;
    const patched = await fetch(`${c.url}/api/accounts/${account.id}`, {
      method: 'PATCH',
      headers: { cookie, origin: c.url, 'x-grantpool-csrf': csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ proxy_disabled: false }),
    });
    assert.equal(patched.status, 200, 'a change on C with the CSRF token of the session opened on A');

    await logoutOnAEndsOnB(cookie, csrf, 'B to end it within 1 s');
    assert.equal((await fetch(`${c.url}/api/accounts`, { headers: { cookie } })).status, 401);
  });

  test('wrong admin tokens from one address count across the gateways; other addresses are not held up', async () => {
    const attacker = '203.0.113.66';
    const gateways = [stack.gateway, b, c];
    for (let i = 0; i < 10; i++) assert.equal((await loginOn(gateways[i % 3]!, `wrong-token-${i}`, attacker)).status, 401);
    // Each gateway saw 3 or 4 of the 10: the shared count holds the address on every one of them.
    for (const g of gateways) {
      await eventually(`${g.url} to hold the address after 10 wrong tokens spread over three gateways`, async () => (await loginOn(g, admin(), attacker)).status === 429, 1000);
    }
    const bearer = await fetch(`${c.url}/api/status`, { headers: { authorization: `Bearer ${admin()}`, 'x-forwarded-for': attacker } });
    assert.equal(bearer.status, 429, 'the API door too');
    assert.equal((await loginOn(b, admin(), '203.0.113.67')).status, 303, 'another address logs in');
  });

  test('an API key made on A works on another gateway at once; revoked on A, it stops there within 1 s', async () => {
    // D requires a key (the others serve loopback without one).
    const dDir = await mkdtemp(join(tmpdir(), 'grantpool-d-'));
    const d = await startGateway({
      env: { ...stack.env, GRANTPOOL_DATA_DIR: dDir, GRANTPOOL_PORT: String(await freePort()), GRANTPOOL_AUTH_MODE: 'strict', GRANTPOOL_PUBLIC_URL: stack.gateway.config.public_base_url, GRANTPOOL_CLIENT_SECRET_FILE: stack.gateway.config.client_secret_path },
      logger: createLogger({ destination: new LogCapture().stream, level: 'info' }),
    });
    try {
      const models = (key: string) => fetch(`${d.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal((await models('gp-not-a-key-at-all-0000000000')).status, 401);
      const made = await stack.api('POST', '/api/keys', { label: 'made on A' });
      assert.equal(made.status, 201);
      const r = await models(made.body.key);
      assert.notEqual(r.status, 401, `the new key is accepted on D at once: ${await r.text()}`);
      const listed = await fetch(`${d.url}/api/keys`, { headers: { authorization: `Bearer ${admin()}` } });
      assert.ok(((await listed.json()) as { keys: { id: string }[] }).keys.some((k) => k.id === made.body.id), 'D lists it');
      await stack.api('DELETE', `/api/keys/${made.body.id}`);
      await eventually('D to refuse the key revoked on A within 1 s', async () => (await models(made.body.key)).status === 401, 1000);
    } finally {
      await d.close();
      await rm(dDir, { recursive: true, force: true });
    }
  });

  const metricsOf = async (g: Gateway) => {
    const text = await (await fetch(`${g.url}/metrics`, { headers: { authorization: `Bearer ${admin()}` } })).text();
    const value = (name: string) => {
      const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    return { text, value };
  };

  test('/metrics shows the database: connections by state, queries, refresh locks, NOTIFY lag, shared usage round trips', async () => {
    const m = await metricsOf(b);
    assert.equal(m.value('grantpool_db_connections{state="max"}'), 10);
    assert.ok(m.value('grantpool_db_connections{state="idle"}')! >= 1, m.text.match(/^grantpool_db_connections.*$/gm)?.join('\n'));
    assert.ok(m.value('grantpool_db_queries_total')! > 0);
    assert.equal(m.value('grantpool_db_refresh_locks_held'), 0);
    assert.equal(m.value('grantpool_db_refresh_lock_waiters'), 0);
    const lag = m.value('grantpool_db_notify_lag_seconds');
    assert.ok(lag !== null && lag >= 0 && lag < 1, `NOTIFY came back in ${lag} s`);
    assert.ok(m.value('grantpool_db_usage_round_trips_total')! > 0);
    await eventually('what B counted to be sent within a second or two', async () => (await metricsOf(b)).value('grantpool_usage_unsent_requests') === 0);
  });

  test('the database restarted under load: B keeps serving, says degraded, and catches up', async () => {
    const account = (await b.store.list()).find((a) => a.email === 'shared@example.com')!;
    await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: false });
    await eventually('B to see the account enabled', () => b.pool.accounts().find((a) => a.id === account.id)?.proxy_disabled === false, 1000);

    pg.stop();
    const health = async () => (await (await fetch(`${b.url}/healthz`)).json()) as { status: string; problems?: string[] };
    for (let i = 0; i < 20; i++) {
      const r = await ask(b, `during the outage ${i}`);
      assert.ok(r.choices[0]!.message.content, 'served from memory while the database is down');
    }
    const h = await eventually('B to say degraded', async () => {
      const h = await health();
      return h.status === 'degraded' && h;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    assert.match(h.problems![0]!, /database unreachable/);
    const patch = await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: true }, { allowError: true });
    assert.equal(patch.status, 503, JSON.stringify(patch.body));
    assert.match(JSON.stringify(patch.body), /account database is unreachable.*nothing was changed/);

    pg.start();
    await eventually('B to be healthy again after the restart', async () => (await health()).status === 'ok', { timeoutMs: 15_000, intervalMs: 100 });
    await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: true });
    await eventually('B to catch up with a change made after the restart', () => b.pool.accounts().find((a) => a.id === account.id)?.proxy_disabled, 2000);
    const afterwards = await eventually('B to send the counts it kept', async () => {
      const m = await metricsOf(b);
      return m.value('grantpool_usage_unsent_requests') === 0 && m;
    }, { timeoutMs: 35_000, intervalMs: 200 });
    assert.ok(afterwards.value('grantpool_db_errors_total')! > 0, 'the outage shows in the errors');
  });

  test('after the database restart, shared events reach the other gateways again: a logout on A ends the session on B', async () => {
    const healthOf = async (g: Gateway) => ((await (await fetch(`${g.url}/healthz`)).json()) as { status: string }).status;
    const both = (status: string) =>
      eventually(`A and B to say ${status}`, async () => (await healthOf(stack.gateway)) === status && (await healthOf(b)) === status, { timeoutMs: 15_000, intervalMs: 100 });
    pg.stop();
    await both('degraded');
    pg.start();
    await both('ok');

    const { cookie, csrf } = await sessionFromAOnB();
    await logoutOnAEndsOnB(cookie, csrf, 'B to end it within 1 s (hearing the logout, not by its own recheck 30 s later)');
  });
});

describe('grantpool store copy', { skip }, () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
  });
  after(() => pg?.destroy());

  // Every write to a data directory is fsynced (about 30-90 ms each here), so the suite copies 300; the
  // database side takes 1,000 in about 10 s (docs/deploy.md has the figures).
  const N = 300;
  test(`${N} accounts go to the database and back with tokens and states intact, twice without duplicates`, async () => {
    const url = await pg.createDatabase('copy');
    const src = await mkdtemp(join(tmpdir(), 'grantpool-copy-src-'));
    const back = await mkdtemp(join(tmpdir(), 'grantpool-copy-back-'));
    const { logger } = captureLogger();
    try {
      // The source data directory as a person (or an older tool) would have written it: one file per account.
      await mkdir(join(src, 'accounts'), { recursive: true, mode: 0o700 });
      for (let i = 0; i < N; i++) {
        const a = makeAccount(`acc${i}`, { sub: `sub-${i}`, email: `u${i}@example.com`, refresh_token: `rt-${i}` });
        const withState = i % 10 === 0 ? { ...a, disabled: true, disabled_at: 1700000000, disabled_reason: 'invalid_grant: Token has been expired or revoked.' } : i % 10 === 1 ? { ...a, proxy_disabled: true, proxy_disabled_reason: 'manual' } : a;
        await writeFile(join(src, 'accounts', `${a.id}.json`), JSON.stringify(withState), { mode: 0o600 });
      }
      const files = await createFileStore({ dataDir: src, logger });
      const original = (await files.list()).sort((x, y) => x.id.localeCompare(y.id));
      assert.equal(original.length, N);
      await files.close();

      const lines: string[] = [];
      const out = { write: (t: string) => void lines.push(t), error: (t: string) => void lines.push(t), color: false };
      const env = { GRANTPOOL_DATA_DIR: src };
      assert.equal(await main(['store', 'copy', '--from', src, '--to', url], out, env), 0, lines.join(''));
      assert.match(lines.join(''), new RegExp(`copied ${N} accounts .* \\(${N} new, 0 updated\\)`));
      assert.equal(await main(['store', 'copy', '--from', src, '--to', url], out, env), 0);
      assert.match(lines.at(-1)!, new RegExp(`\\(0 new, ${N} updated\\)`));
      assert.equal(await main(['store', 'copy', '--from', url, '--to', back], out, env), 0);

      const db = await createPgStore({ url, logger, catchUpIntervalMs: 0 });
      const inDb = (await db.list()).sort((x, y) => x.id.localeCompare(y.id));
      await db.close();
      const returned = await createFileStore({ dataDir: back, logger });
      const roundTrip = (await returned.list()).sort((x, y) => x.id.localeCompare(y.id));
      await returned.close();
      assert.deepEqual(inDb, original);
      assert.deepEqual(roundTrip, original);
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(back, { recursive: true, force: true });
    }
  });
});
