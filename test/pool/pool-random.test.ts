// Drives the pool with random events (requests, 401, 429, 403, 5xx,
// invalid_grant, client and transient refresh errors, file edits, restarts,
// clock jumps) for many seeds and checks invariants after every step:
// - a disabled (or proxy_disabled) account is never handed out to a request
//   that started after it was disabled;
// - never two refreshes in flight for one account;
// - cooldowns reported for an account and model are respected;
// - every account is in exactly one state, matching the store;
// - only invalid_grant disables an account (transient errors never do);
// - a lease is for a service the request asked for, on a lane the account has
//   (a Vertex lane only when its project has Vertex AI enabled).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { createPool, type Pool } from '../../src/pool/pool.ts';
import { NoAccountError, type LaneService, type Lease } from '../../src/pool/types.ts';
import type { Account } from '../../src/store/account.ts';
import { captureLog, defaultPoolConfig, fakeAccount, T0, GEMINI_SCOPE, CLOUD_SCOPE } from '../support/fake-accounts.ts';
import { FakeRefresher, refreshErrors, type RefreshStep } from '../support/fake-refresher.ts';
import { mulberry32 } from '../support/seeded-random.ts';

const SEEDS = 200;
const STEPS = 300;
const MODELS = ['flash', 'pro'];
const SERVICE_CHOICES: (readonly LaneService[] | undefined)[] = [undefined, ['gemini_api'], ['gemini_api', 'vertex'], ['vertex'], ['vertex', 'gemini_api']];
const STATES = new Set(['active', 'refreshing', 'cooling_down', 'quota_protected', 'proxy_disabled', 'disabled']);

async function settle(rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

async function runSeed(seed: number): Promise<void> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const chance = (p: number) => rnd() < p;
  const clock = new FakeClock(T0);
  const nowS = () => Math.floor(clock.now() / 1000);

  const ids = Array.from({ length: 2 + Math.floor(rnd() * 5) }, (_, i) => `acc${i}`);
  const initial = ids.map((id) =>
    fakeAccount(id, {
      expiresIn: Math.floor(rnd() * 4000) - 200,
      scope: chance(0.2) ? `openid email ${GEMINI_SCOPE}` : `openid email ${CLOUD_SCOPE}`,
      clientId: chance(0.3) ? 'client-b' : 'client-a',
      ...(chance(0.5) ? { project_id: `proj-${id}`, project: { source: 'manual' as const, checked_at: 1, gemini_api: 'enabled' as const, vertex_ai: chance(0.7) ? ('enabled' as const) : ('disabled' as const) } } : {}),
    }),
  );
  const store = new MemoryAccountStore(initial);

  // a synchronous mirror of the store with a logical clock of changes
  let seq = 0;
  const mirror = new Map<string, Account>();
  /** Sequence number since which an account has been continuously out (disabled or proxy_disabled). */
  const outSince = new Map<string, number>();
  for (const a of initial) {
    mirror.set(a.id, a);
  }
  store.watch((c) => {
    seq++;
    if (c.account) {
      mirror.set(c.id, c.account);
      const out = c.account.disabled || c.account.proxy_disabled;
      if (out && !outSince.has(c.id)) outSince.set(c.id, seq);
      if (!out) outSince.delete(c.id);
    } else {
      mirror.delete(c.id);
      outSince.delete(c.id);
      for (const k of [...cooldowns.keys()]) if (k.startsWith(`${c.id}|`)) cooldowns.delete(k);
    }
  });

  // refresh answers: mostly fine, sometimes each kind of failure
  const refresher = new FakeRefresher(clock);
  /** refresh tokens that got invalid_grant */
  const deadTokens = new Set<string>();
  refresher.delay = async () => {
    const n = Math.floor(rnd() * 3);
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };
  refresher.decide = (account): RefreshStep => {
    if (deadTokens.has(account.token.refresh_token)) return { ok: false, error: refreshErrors.invalidGrant() };
    const r = rnd();
    if (r < 0.08) {
      deadTokens.add(account.token.refresh_token);
      return { ok: false, error: refreshErrors.invalidGrant() };
    }
    if (r < 0.12) return { ok: false, error: refreshErrors.invalidClient() };
    if (r < 0.2) return { ok: false, error: refreshErrors.http500() };
    if (r < 0.25) return { ok: false, error: refreshErrors.nonJson() };
    return { ok: true, lifetimeSeconds: 600 + Math.floor(rnd() * 3000) };
  };

  const config = { ...defaultPoolConfig, strategy: chance(0.5) ? ('round_robin' as const) : ('fill_first' as const), session_affinity: chance(0.7) };
  const log = captureLog();
  const makePool = () =>
    createPool({ store, refresher, clock, logger: log.logger, config, backgroundIntervalMs: 0, random: rnd, backgroundConcurrency: 2 });
  let pool: Pool = makePool();
  await pool.start();

  /** `${id}|${service}|${model}` -> until (ms), as reported to the current pool */
  const cooldowns = new Map<string, number>();
  const leases: Lease[] = [];
  const problems: string[] = [];
  let step = 0;

  function checkLease(lease: Lease, model: string, startedAt: number, services: readonly LaneService[]): void {
    if (!services.includes(lease.service)) problems.push(`step ${step}: ${lease.accountId} leased on ${lease.service}, not asked for (${services.join(', ')})`);
    const acc = mirror.get(lease.accountId);
    if (lease.service === 'vertex' && acc && !(acc.project_id && acc.project?.vertex_ai === 'enabled' && lease.lane === `vertex:${acc.project_id}`)) {
      problems.push(`step ${step}: ${lease.accountId} leased on lane ${lease.lane} without Vertex AI in its project`);
    }
    const since = outSince.get(lease.accountId);
    if (since !== undefined && since < startedAt) {
      const a = mirror.get(lease.accountId)!;
      problems.push(`step ${step}: ${lease.accountId} handed out while ${a.disabled ? 'disabled' : 'proxy_disabled'} since change #${since} (request started at #${startedAt})`);
    }
    if (!mirror.has(lease.accountId)) problems.push(`step ${step}: removed account ${lease.accountId} handed out`);
    const until = cooldowns.get(`${lease.accountId}|${lease.service}|${model}`);
    if (until !== undefined && clock.now() < until) problems.push(`step ${step}: ${lease.accountId} handed out for ${model} during its cooldown`);
  }

  async function acquire(): Promise<void> {
    const model = pick(MODELS);
    const req = {
      model,
      sessionKey: chance(0.3) ? `s${Math.floor(rnd() * 3)}` : undefined,
      anyOfScopes: chance(0.2) ? [GEMINI_SCOPE] : [],
      pinned: chance(0.1) ? pick(ids) : undefined,
      services: pick(SERVICE_CHOICES),
    };
    const startedAt = ++seq;
    try {
      const lease = await pool.acquire(req);
      checkLease(lease, model, startedAt, req.services ?? ['gemini_api']);
      leases.push(lease);
      if (leases.length > 20) leases.shift();
    } catch (e) {
      if (!(e instanceof NoAccountError)) problems.push(`step ${step}: acquire threw ${(e as Error).stack}`);
      else if (e.status === 429 && !(e.retryAfterSeconds! >= 1)) problems.push(`step ${step}: 429 without Retry-After`);
    }
  }

  for (step = 0; step < STEPS; step++) {
    const r = rnd();
    if (r < 0.35) {
      // a burst of concurrent requests
      const n = 1 + Math.floor(rnd() * 12);
      await Promise.all(Array.from({ length: n }, () => acquire()));
    } else if (r < 0.45 && leases.length) {
      const lease = pick(leases);
      const model = pick(MODELS);
      const until = clock.now() + Math.floor(rnd() * 120_000) + 1;
      pool.report(lease, model, { kind: 'rate_limited', untilMs: until, reason: 'RESOURCE_EXHAUSTED' });
      const key = `${lease.accountId}|${lease.service}|${model}`;
      if (mirror.has(lease.accountId)) cooldowns.set(key, Math.max(cooldowns.get(key) ?? 0, until));
    } else if (r < 0.5 && leases.length) {
      const lease = pick(leases);
      const model = pick(MODELS);
      pool.report(lease, model, { kind: 'server_error', reason: 'HTTP 503' });
      const key = `${lease.accountId}|${lease.service}|${model}`;
      if (mirror.has(lease.accountId)) cooldowns.set(key, Math.max(cooldowns.get(key) ?? 0, clock.now() + defaultPoolConfig.server_error_cooldown_seconds * 1000));
    } else if (r < 0.53 && leases.length) {
      pool.report(pick(leases), pick(MODELS), { kind: 'forbidden', reason: 'SERVICE_DISABLED' });
    } else if (r < 0.6 && leases.length) {
      const lease = pick(leases);
      const startedAt = ++seq;
      const concurrent = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pool.refreshAfterUnauthorized(lease));
      for (const fresh of await Promise.all(concurrent)) {
        if (fresh) {
          const since = outSince.get(fresh.accountId);
          if (since !== undefined && since < startedAt) problems.push(`step ${step}: 401 retry handed out an account that is out`);
        }
      }
    } else if (r < 0.65 && leases.length) {
      pool.report(pick(leases), pick(MODELS), { kind: 'ok', tokensIn: 10, tokensOut: 20 });
    } else if (r < 0.8) {
      // someone edits the files
      const id = pick(ids);
      const e = rnd();
      if (!mirror.has(id)) {
        await store.put(fakeAccount(id, { nowMs: clock.now(), expiresIn: Math.floor(rnd() * 3000) }));
      } else if (e < 0.2) {
        await store.update(id, (a) => ({ ...a, proxy_disabled: !a.proxy_disabled, proxy_disabled_reason: a.proxy_disabled ? null : 'manual', proxy_disabled_at: a.proxy_disabled ? null : nowS() }));
      } else if (e < 0.45) {
        // re-added with new credentials (clears the disable flags)
        const rt = `1//re-added-${id}-${step}`;
        await store.update(id, (a) => ({
          ...a,
          token: { ...a.token, refresh_token: rt, access_token: `ya29.readded-${step}`, expiry_timestamp: nowS() + Math.floor(rnd() * 3600) },
          disabled: false, disabled_at: null, disabled_reason: null,
        }));
      } else if (e < 0.6) {
        await store.update(id, (a) => ({ ...a, token: { ...a.token, expiry_timestamp: nowS() - 1 } }));
      } else if (e < 0.65) {
        await store.update(id, (a) => ({ ...a, name: `edited ${step}` }));
      } else if (e < 0.7) {
        // Vertex AI enabled or disabled in its project: its Vertex lane comes or goes (a new lane: no cooldown carried over)
        await store.update(id, (a) =>
          a.project_id && a.project ? { ...a, project: { ...a.project, vertex_ai: a.project.vertex_ai === 'enabled' ? ('disabled' as const) : ('enabled' as const) } } : null,
        );
        for (const k of [...cooldowns.keys()]) if (k.startsWith(`${id}|vertex|`)) cooldowns.delete(k);
      } else if (e < 0.8) {
        await store.remove(id);
      } else {
        await store.update(id, (a) => ({ ...a, disabled: true, disabled_at: nowS(), disabled_reason: 'by hand' }));
      }
    } else if (r < 0.9) {
      clock.advance(Math.floor(rnd() * 400_000));
      pool.tick();
    } else if (r < 0.95) {
      pool.tick();
    } else {
      // restart: a new pool over the same store (cooldowns live in memory only)
      await pool.stop();
      pool = makePool();
      await pool.start();
      cooldowns.clear();
    }
    await settle();

    // ---- invariants ----
    if (refresher.maxConcurrentPerAccount > 1) problems.push(`step ${step}: two refreshes in flight for one account`);
    const states = pool.states();
    const seen = new Set<string>();
    for (const s of states) {
      if (seen.has(s.id)) problems.push(`step ${step}: ${s.id} listed twice`);
      seen.add(s.id);
      if (!STATES.has(s.state.state)) problems.push(`step ${step}: ${s.id} in unknown state ${s.state.state}`);
      const a = mirror.get(s.id);
      if (!a) problems.push(`step ${step}: ${s.id} is in the pool but not in the store`);
      else if (a.disabled && s.state.state !== 'disabled') problems.push(`step ${step}: ${s.id} is disabled in the store but ${s.state.state}`);
      else if (!a.disabled && a.proxy_disabled && s.state.state !== 'proxy_disabled') problems.push(`step ${step}: ${s.id} is proxy_disabled in the store but ${s.state.state}`);
    }
    for (const id of mirror.keys()) if (!seen.has(id)) problems.push(`step ${step}: ${id} is in the store but not in the pool`);
    const sum = pool.summary();
    const total = Object.values(sum.by_state).reduce((x, y) => x + y, 0);
    if (total !== mirror.size || sum.total !== mirror.size) problems.push(`step ${step}: summary counts ${total}/${sum.total}, store has ${mirror.size}`);
    for (const a of mirror.values()) {
      if (a.disabled && a.disabled_reason?.startsWith('invalid_grant') && !deadTokens.has(a.token.refresh_token)) {
        problems.push(`step ${step}: ${a.id} disabled for invalid_grant without one (transient errors must not disable)`);
      }
    }
    if (problems.length) break;
  }
  await pool.stop();
  await settle(10);
  if (problems.length) assert.fail(`seed ${seed}: ${problems.slice(0, 5).join('\n')}`);
}

test(`randomized: ${SEEDS} seeds × ${STEPS} steps keep the pool's invariants`, async () => {
  for (let seed = 1; seed <= SEEDS; seed++) await runSeed(seed);
});
