// Dashboard sessions shared by two gateways through one shared state (the
// in-process one standing in for the database): what the end-to-end test on
// PostgreSQL cannot wait for (hours of idle time), and a shared store that
// fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createDashboardSessions } from '../../src/dashboard/session.ts';
import { MemorySharedState, type SharedKv } from '../../src/store/shared-state.ts';
import { FakeClock } from '../../src/util/clock.ts';

const ADMIN = 'gpa-shared-sessions-admin-token-0123456789';
const get = (cookie: string) => ({ headers: { cookie }, method: 'GET', socket: { remoteAddress: '127.0.0.1' } }) as unknown as IncomingMessage;

function pair(wrap: (kv: SharedKv) => SharedKv = (kv) => kv) {
  const clock = new FakeClock();
  const state = new MemorySharedState({ now: () => clock.now() });
  const shared = { kv: wrap(state.kv), events: state.events };
  const opts = { adminToken: () => ADMIN, clock, idleMs: 2 * 3600_000, maxAgeMs: 12 * 3600_000, shared };
  return { clock, a: createDashboardSessions(opts), b: createDashboardSessions(opts) };
}

async function use(s: ReturnType<typeof createDashboardSessions>, cookie: string) {
  await s.prepare(get(cookie));
  return s.authenticate(get(cookie)).ok;
}

test('a session used for hours on A only is still alive on B (its last use is shared); past the maximum age it ends on both', async () => {
  const { clock, a, b } = pair();
  const r = a.login(ADMIN);
  assert.ok(r.ok);
  await a.flush();
  const cookie = r.setCookie.split(';')[0]!;
  assert.equal(await use(b, cookie), true, 'B knows it at once');
  for (let h = 0; h < 10; h++) {
    clock.advance(3600_000);
    assert.equal(await use(a, cookie), true, `alive on A after ${h + 1} h of use`);
    await a.flush();
  }
  assert.equal(await use(b, cookie), true, 'B saw no use for 10 h, but A did: not idle');
  clock.advance(2 * 3600_000 + 1);
  assert.equal(await use(b, cookie), false, 'past 12 h: ended');
  assert.equal(await use(a, cookie), false);
});

test('the shared store failing: sessions opened on this gateway keep working, and are shared once it is back', async () => {
  let down = false;
  const flaky = (kv: SharedKv): SharedKv => ({
    get: (ns, k) => (down ? Promise.reject(new Error('ECONNREFUSED')) : kv.get(ns, k)),
    set: (ns, k, v, e) => (down ? Promise.reject(new Error('ECONNREFUSED')) : kv.set(ns, k, v, e)),
    update: (ns, k, c) => (down ? Promise.reject(new Error('ECONNREFUSED')) : kv.update(ns, k, c)),
    delete: (ns, k) => (down ? Promise.reject(new Error('ECONNREFUSED')) : kv.delete(ns, k)),
  });
  const { clock, a, b } = pair(flaky);
  down = true;
  const r = a.login(ADMIN);
  assert.ok(r.ok, 'logging in does not need the shared store');
  await a.flush();
  const cookie = r.setCookie.split(';')[0]!;
  assert.equal(await use(a, cookie), true);
  assert.equal(await use(b, cookie), false, 'B cannot know it yet');
  down = false;
  clock.advance(31_000);
  assert.equal(await use(a, cookie), true, 'A re-checks, finds it missing, and saves it instead of dropping it');
  await a.flush();
  assert.equal(await use(b, cookie), true, 'now B knows it');
});
