// A gateway killed with SIGKILL in the middle of a refresh, on PostgreSQL:
// gateway A (a real `grantpool serve` process) holds the account's refresh
// lock and waits for Google; it is killed. PostgreSQL ends A's session and
// with it the advisory lock, the other gateways keep serving, take over the
// next refresh (exactly one), lose no change made meanwhile, and the account
// stays healthy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import postgres from 'postgres';
import { startGateway, type Gateway } from '../../src/app/gateway.ts';
import { createLogger } from '../../src/log/logger.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { freePort, LogCapture, startStack, type Stack } from '../support/stack.ts';
import { eventually } from '../support/eventually.ts';

const found = findPostgres();
const skip = typeof found === 'string' ? found : false;
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'grantpool.js');
/** The refresh lock's class (src/store/pg-store.ts). */
const LOCK_CLASS_REFRESH = 0x67707266;

describe('a gateway killed with SIGKILL during a refresh (PostgreSQL)', { skip }, () => {
  let pg: TestPostgres;
  let stack: Stack;
  let c: Gateway;
  let sql: postgres.Sql;
  let child: ChildProcess | null = null;
  const dirs: string[] = [];
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
    const url = await pg.createDatabase('kill');
    sql = postgres(url, { onnotice: () => {} });
    stack = await startStack({ env: { GRANTPOOL_DATABASE_URL: url } });
    const cDir = await mkdtemp(join(tmpdir(), 'grantpool-kill-c-'));
    dirs.push(cDir);
    c = await startGateway({
      env: { ...stack.env, GRANTPOOL_DATA_DIR: cDir, GRANTPOOL_PORT: String(await freePort()), GRANTPOOL_PUBLIC_URL: stack.gateway.config.public_base_url, GRANTPOOL_CLIENT_SECRET_FILE: stack.gateway.config.client_secret_path },
      logger: createLogger({ destination: new LogCapture().stream, level: 'info' }),
    });
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await c?.close();
    await stack?.close();
    await sql?.end();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    pg?.destroy();
  });

  const ask = (url: string, text: string) =>
    new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }).chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: text }] });
  const refreshLocks = async () => (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = ${LOCK_CLASS_REFRESH} AND granted`)[0]!.n;

  test('the lock ends with the killed gateway; the others serve on, refresh once, and lose no change', { timeout: 120_000 }, async () => {
    stack.issuer.addUser({ email: 'kill@example.com', name: 'Kill' });
    assert.equal((await stack.addAccount('kill@example.com')).status, 200);
    const id = (await stack.gateway.store.list())[0]!.id;
    const b = stack.gateway;

    // A refreshes 50 min ahead (the others 5 min ahead), so a token with 20 minutes left is A's to refresh.
    const aDir = await mkdtemp(join(tmpdir(), 'grantpool-kill-a-'));
    dirs.push(aDir);
    await writeFile(join(aDir, 'config.json'), JSON.stringify({ refresh_before_seconds: 3000 }), { mode: 0o600 });
    const aPort = await freePort();
    const aUrl = `http://127.0.0.1:${aPort}`;
    let aLog = '';
    const a = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, ...stack.env, GRANTPOOL_DATA_DIR: aDir, GRANTPOOL_PORT: String(aPort), GRANTPOOL_PUBLIC_URL: b.config.public_base_url, GRANTPOOL_CLIENT_SECRET_FILE: b.config.client_secret_path, GRANTPOOL_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = a;
    a.stdout!.on('data', (d) => (aLog += d));
    a.stderr!.on('data', (d) => (aLog += d));
    const exited = new Promise<void>((r) => a.once('exit', () => r()));
    await eventually(`A to start (${aLog.slice(-500)})`, async () => (await fetch(`${aUrl}/healthz`).catch(() => null))?.ok, 60_000);
    assert.ok((await ask(aUrl, 'A serves')).choices[0]!.message.content);

    const hold = stack.issuer.holdTokenRequests();
    const refreshesBefore = stack.issuer.counters.refreshRequests;
    const expiry = Math.floor(Date.now() / 1000) + 1200;
    await b.store.update(id, (x) => ({ ...x, token: { ...x.token, expiry_timestamp: expiry } }));
    await Promise.race([hold.arrived, eventually('A to ask Google for a new token', () => false, 20_000)]);
    assert.equal(await refreshLocks(), 1, 'A holds the refresh lock while Google answers');

    // Meanwhile: B and C serve with the token they have, and a change is made through B.
    assert.ok((await ask(b.url, 'B while A refreshes')).choices[0]!.message.content);
    assert.ok((await ask(c.url, 'C while A refreshes')).choices[0]!.message.content);
    await b.store.update(id, (x) => ({ ...x, name: 'Renamed while A refreshed' }));

    a.kill('SIGKILL');
    await exited;
    await eventually('PostgreSQL to end the killed session and its lock', async () => (await refreshLocks()) === 0, 5000);
    hold.release();
    // Whatever became of A's request (its answer goes nowhere), it was at most one.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(stack.issuer.counters.refreshRequests - refreshesBefore <= 1);

    // Now the token runs out for everyone: B and C take over, with one refresh between them.
    const mid = stack.issuer.counters.refreshRequests;
    await b.store.update(id, (x) => ({ ...x, token: { ...x.token, expiry_timestamp: Math.floor(Date.now() / 1000) - 10 } }));
    await eventually('B and C to see the expired token', () => [b, c].every((g) => (g.pool.accounts().find((x) => x.id === id)?.token.expiry_timestamp ?? 0) < Date.now() / 1000 || g.pool.refreshingIds().includes(id)), 2000);
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => ask(i % 2 ? b.url : c.url, `after the kill ${i}`)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 0, String((failed[0] as PromiseRejectedResult | undefined)?.reason));
    assert.equal(stack.issuer.counters.refreshRequests - mid, 1, 'one refresh across B and C after the kill');
    assert.equal(await refreshLocks(), 0, 'and no lock left behind');

    const stored = await b.store.get(id);
    assert.equal(stored!.name, 'Renamed while A refreshed', 'the change made while A held the lock is kept');
    assert.ok(stored!.token.expiry_timestamp > Date.now() / 1000 + 600, 'a fresh token is stored');
    for (const g of [b, c]) {
      assert.deepEqual(g.pool.stateOf(id), { state: 'active' });
      assert.equal(((await (await fetch(`${g.url}/healthz`)).json()) as { status: string }).status, 'ok');
    }
  });
});
