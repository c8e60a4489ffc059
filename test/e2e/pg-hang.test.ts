// A database that stops answering without closing anything (a host that
// hangs, a network that drops packets): connections stay open, nothing comes
// back. The gateway notices by itself, keeps serving from memory, refreshes
// without the cross-gateway lock, answers the operator in bounded time, and
// writes what it could not once the database answers again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { eventually } from '../support/eventually.ts';

const found = findPostgres();
const skip = typeof found === 'string' ? found : false;

describe('a database that stops answering (server frozen, connections open)', { skip }, () => {
  let pg: TestPostgres;
  let stack: Stack;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
    stack = await startStack({ env: { GRANTPOOL_DATABASE_URL: await pg.createDatabase('hang') } });
    stack.issuer.addUser({ email: 'frozen@example.com', name: 'Frozen' });
    assert.equal((await stack.addAccount('frozen@example.com')).status, 200);
  });
  after(async () => {
    pg?.resume();
    await stack?.close();
    pg?.destroy();
  });

  const ask = (text: string) =>
    new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0, timeout: 30_000 }).chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: text }],
    });
  const health = async () => (await (await fetch(`${stack.gateway.url}/healthz`)).json()) as { status: string; problems?: string[] };
  const timed = async <T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const t0 = Date.now();
    const value = await f();
    return { value, ms: Date.now() - t0 };
  };

  test('requests are served, /healthz says degraded, an expired token is refreshed, changes get a 503 in bounded time; afterwards all is written', { timeout: 150_000 }, async () => {
    const [account] = (await stack.api('GET', '/api/accounts')).body.accounts;
    const tokenInDb = async () => (await stack.gateway.store.get(account.id))!.token.access_token;
    const before = { token: await tokenInDb(), refreshes: stack.issuer.counters.refreshRequests };
    pg.pause();
    const frozenAt = Date.now();
    try {
      for (let i = 0; i < 5; i++) assert.ok((await ask(`while frozen ${i}`)).choices[0]!.message.content, 'served from memory');
      // A change sent before the gateway knows: answered when the deadline (10 s) or the connect timeout runs out.
      const early = await timed(() => stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: false }, { allowError: true }));
      assert.equal(early.value.status, 503, JSON.stringify(early.value.body));
      assert.ok(early.ms < 15_000, `the first change was answered after ${early.ms} ms`);
      assert.match(JSON.stringify(early.value.body), /account database (did not answer within 10 s|is unreachable)/);

      const degraded = await eventually('/healthz to say degraded', async () => {
        const h = await health();
        return h.status === 'degraded' && h;
      }, { timeoutMs: 20_000, intervalMs: 200 });
      assert.match(degraded.problems!.join('; '), /database unreachable/);
      assert.ok(Date.now() - frozenAt < 25_000);

      // Known down: a change is refused at once, and says nothing was made.
      const late = await timed(() => stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: false }, { allowError: true }));
      assert.equal(late.value.status, 503);
      assert.ok(late.ms < 2000, `a change while known down was answered after ${late.ms} ms`);
      assert.match(JSON.stringify(late.value.body), /account database is unreachable.*nothing was changed/);

      // Two hours later the token has expired: the refresh goes ahead without the database's lock.
      stack.clock.advance(2 * 3600_000);
      const expired = await timed(() => ask('with an expired token'));
      assert.ok(expired.value.choices[0]!.message.content);
      assert.ok(expired.ms < 5000, `the request that needed a refresh took ${expired.ms} ms`);
      assert.equal(stack.issuer.counters.refreshRequests - before.refreshes, 1, 'one refresh');
    } finally {
      pg.resume();
    }
    await eventually('/healthz to say ok again', async () => (await health()).status === 'ok', { timeoutMs: 20_000, intervalMs: 200 });
    // The first change, held by the frozen server, is made now (it said it might be), with the token the row had;
    // the token refreshed meanwhile is written again with backoff (up to a minute apart) until the row has it.
    await eventually('the database to hold a refreshed token', async () => (await tokenInDb()) !== before.token, { timeoutMs: 70_000, intervalMs: 500 });
    assert.ok((await ask('after the freeze')).choices[0]!.message.content);
    assert.ok(stack.issuer.counters.refreshRequests - before.refreshes <= 2, 'at most one more refresh after the freeze');
  });
});
