// Services: an account keeps its Gemini API lane and, when its project has
// Vertex AI enabled, also draws on a Vertex lane `vertex:<project>`. A request
// names the services it may use in order of preference; quota (429
// cooldowns, quota protection) belongs to each lane on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeAccount, poolHarness, settle, T0, CLOUD_SCOPE, GEMINI_SCOPE } from '../support/fake-accounts.ts';
import { NoAccountError, type AcquireRequest } from '../../src/pool/types.ts';
import { describeLanes, laneInfosOf } from '../../src/pool/lanes.ts';

const project = (vertex: 'enabled' | 'disabled' | 'unknown') => ({ source: 'manual' as const, checked_at: 1, gemini_api: 'enabled' as const, vertex_ai: vertex });
/** An account on project P; with Vertex AI enabled there unless `vertex` says otherwise. */
const acct = (id: string, p: string | null, vertex: 'enabled' | 'disabled' | 'unknown' = 'enabled', extra = {}) =>
  fakeAccount(id, { project_id: p, project: p ? project(vertex) : null, ...extra });

const BOTH = ['gemini_api', 'vertex'] as const;

async function picks(h: Awaited<ReturnType<typeof poolHarness>>, n: number, req: Partial<AcquireRequest> = {}): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const l = await h.pool.acquire({ model: 'flash', ...req });
    out.push(`${l.accountId}@${l.lane}`);
  }
  return out;
}

test('services: an account has a Vertex lane only with a project whose Vertex AI is enabled', () => {
  assert.deepEqual(laneInfosOf(acct('a', 'proj-a')).map((l) => l.key), ['gemini_api:proj-a', 'vertex:proj-a']);
  assert.deepEqual(laneInfosOf(acct('b', 'proj-b', 'disabled')).map((l) => l.key), ['gemini_api:proj-b']);
  assert.deepEqual(laneInfosOf(acct('c', 'proj-c', 'unknown')).map((l) => l.key), ['gemini_api:proj-c']);
  assert.deepEqual(laneInfosOf(acct('d', null)).map((l) => l.key), ['gemini_api:client:client-a.apps.googleusercontent.com']);
  const d = describeLanes([acct('a', 'proj-a'), acct('a2', 'proj-a'), acct('b', 'proj-b', 'disabled')]);
  assert.equal(d.lanes, 3, 'gemini_api:proj-a, vertex:proj-a, gemini_api:proj-b');
  assert.deepEqual(d.allByAccount.get('a')!.map((l) => [l.key, l.service, l.accounts]), [
    ['gemini_api:proj-a', 'gemini_api', 2],
    ['vertex:proj-a', 'vertex', 2],
  ]);
  assert.deepEqual(d.shared.map((l) => l.key), ['gemini_api:proj-a'], 'one warning per shared project, not one per service');
});

test('services: by default a request uses the Gemini API only; the lease names its service and lane', async () => {
  const h = await poolHarness([acct('a', 'proj-a'), acct('b', 'proj-b', 'disabled')]);
  assert.deepEqual(new Set(await picks(h, 4)), new Set(['a@gemini_api:proj-a', 'b@gemini_api:proj-b']));
  const l = await h.pool.acquire({ model: 'flash', services: ['vertex'] });
  assert.equal(l.service, 'vertex');
  assert.equal(l.lane, 'vertex:proj-a');
  assert.equal(l.projectId, 'proj-a');
  assert.deepEqual(await picks(h, 3, { services: ['vertex'] }), ['a@vertex:proj-a', 'a@vertex:proj-a', 'a@vertex:proj-a'], 'b has no Vertex lane');
});

test('services: the first service with a usable lane serves; the next only when it has none', async () => {
  const h = await poolHarness([acct('a', 'proj-a'), acct('b', 'proj-b')]);
  assert.deepEqual(new Set(await picks(h, 4, { services: BOTH })), new Set(['a@gemini_api:proj-a', 'b@gemini_api:proj-b']));
  assert.deepEqual(new Set(await picks(h, 4, { services: ['vertex', 'gemini_api'] })), new Set(['a@vertex:proj-a', 'b@vertex:proj-b']));
  // both Gemini API lanes cool down for flash: Vertex adds the capacity
  for (const id of ['a', 'b']) {
    h.pool.report(await h.pool.acquire({ model: 'flash', pinned: id }), 'flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'gemini quota' });
  }
  assert.deepEqual(new Set(await picks(h, 4, { services: BOTH })), new Set(['a@vertex:proj-a', 'b@vertex:proj-b']));
  // another model still prefers the Gemini API
  assert.equal((await h.pool.acquire({ model: 'pro', services: BOTH })).service, 'gemini_api');
  // without Vertex in the list the request waits as before
  await assert.rejects(h.pool.acquire({ model: 'flash' }), (e: NoAccountError) => e.code === 'all_cooling_down' && e.retryAfterSeconds === 60);
});

test('services: a 429 on a Vertex lane cools that lane for that model only, not the Gemini API lane of the same project', async () => {
  const h = await poolHarness([acct('a1', 'proj-a'), acct('a2', 'proj-a'), acct('b', 'proj-b')]);
  const v = await h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a1' });
  assert.equal(v.lane, 'vertex:proj-a');
  h.pool.report(v, 'flash', { kind: 'rate_limited', untilMs: T0 + 30_000, reason: 'RESOURCE_EXHAUSTED on Vertex' });
  // the Vertex lane of proj-a waits for flash (both of its accounts) ...
  assert.deepEqual(await picks(h, 3, { services: ['vertex'] }), ['b@vertex:proj-b', 'b@vertex:proj-b', 'b@vertex:proj-b']);
  // ... not for another model, and not on the Gemini API
  assert.equal((await h.pool.acquire({ model: 'pro', services: ['vertex'], pinned: 'a2' })).lane, 'vertex:proj-a');
  assert.equal((await h.pool.acquire({ model: 'flash', pinned: 'a2' })).lane, 'gemini_api:proj-a');
  assert.equal(h.pool.stateOf('a1')!.state, 'active', 'the account still serves the Gemini API');
  await assert.rejects(
    h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a2' }),
    (e: NoAccountError) => e.code === 'pinned_unusable' && e.status === 429 && e.retryAfterSeconds === 30 && /Vertex/.test(e.message),
  );
  // and a Gemini API 429 leaves the Vertex lane alone
  h.pool.report(await h.pool.acquire({ model: 'pro', pinned: 'b' }), 'pro', { kind: 'rate_limited', untilMs: T0 + 30_000, reason: 'gemini' });
  assert.equal((await h.pool.acquire({ model: 'pro', services: ['vertex'], pinned: 'b' })).lane, 'vertex:proj-b');
  // the cooldown is shared with other gateways under the Vertex lane's key
  const seen: string[] = [];
  h.pool.onLaneCooldown((c) => seen.push(`${c.lane}/${c.model}`));
  h.pool.report(await h.pool.acquire({ model: 'x', services: ['vertex'], pinned: 'b' }), 'x', { kind: 'rate_limited', untilMs: T0 + 5000, reason: 'r' });
  assert.deepEqual(seen, ['vertex:proj-b/x']);
  h.pool.coolLane({ lane: 'vertex:proj-a', model: 'y', untilMs: T0 + 5000, reason: 'from another gateway' });
  assert.deepEqual(await picks(h, 2, { model: 'y', services: ['vertex'] }), ['b@vertex:proj-b', 'b@vertex:proj-b']);
});

test('services: a 5xx on Vertex rests the account on Vertex only', async () => {
  const h = await poolHarness([acct('a', 'proj-a')]);
  h.pool.report(await h.pool.acquire({ model: 'flash', services: ['vertex'] }), 'flash', { kind: 'server_error', reason: 'upstream 503' });
  assert.equal((await h.pool.acquire({ model: 'flash', services: BOTH })).service, 'gemini_api');
  await assert.rejects(h.pool.acquire({ model: 'flash', services: ['vertex'] }), (e: NoAccountError) => e.code === 'all_cooling_down');
});

test('services: quota protection counts per lane and model: Vertex usage does not use up the Gemini API quota', async () => {
  const h = await poolHarness([acct('a1', 'proj-a'), acct('a2', 'proj-a')], {
    config: { quota_protection: { enabled: true, threshold_percent: 0, limits: { flash: { requests_per_day: 3 } } } },
  });
  for (const id of ['a1', 'a2', 'a1']) {
    h.pool.report(await h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: id }), 'flash', { kind: 'ok', tokensIn: 5, tokensOut: 1 });
  }
  await assert.rejects(h.pool.acquire({ model: 'flash', services: ['vertex'] }), (e: NoAccountError) => e.code === 'all_cooling_down' && /quota protection/.test(e.message));
  assert.equal((await h.pool.acquire({ model: 'flash', services: BOTH })).service, 'gemini_api', 'the Gemini API lane has its own quota');
  assert.equal((await h.pool.acquire({ model: 'pro', services: ['vertex'] })).service, 'vertex', 'another model is not protected');
  assert.equal(h.pool.stateOf('a1')!.state, 'active', "the account's state is its Gemini API state");
  // usage rows say which service
  const rows = await h.pool.usage({ accountId: 'a1' });
  assert.deepEqual(rows.map((r) => [r.model, r.service, r.requests, r.tokens_in]), [['flash', 'vertex', 2, 10]]);
  assert.deepEqual(h.pool.usageToday('a1'), { requests: 2, tokens: 12 });
});

test('services: selection spreads over Vertex lanes before accounts', async () => {
  const h = await poolHarness([acct('p1', 'proj-p'), acct('p2', 'proj-p'), acct('q1', 'proj-q')]);
  assert.deepEqual(await picks(h, 4, { services: ['vertex'] }), ['p1@vertex:proj-p', 'q1@vertex:proj-q', 'p2@vertex:proj-p', 'q1@vertex:proj-q']);
});

test('services: an account that tried a service is not taken on it again, but may serve another (excludeOn)', async () => {
  const h = await poolHarness([acct('a', 'proj-a')]);
  const l = await h.pool.acquire({ model: 'flash', services: BOTH, excludeOn: { gemini_api: new Set(['a']) } });
  assert.equal(l.lane, 'vertex:proj-a');
  await assert.rejects(h.pool.acquire({ model: 'flash', services: BOTH, exclude: new Set(['a']) }), (e: NoAccountError) => e.code === 'exhausted');
  const pinned = await h.pool.acquire({ model: 'flash', services: BOTH, pinned: 'a', excludeOn: { gemini_api: new Set(['a']) } });
  assert.equal(pinned.lane, 'vertex:proj-a');
});

test('services: scopes per service (cloud-platform for Vertex AI, generative-language for the Gemini API)', async () => {
  const h = await poolHarness([acct('cloud', 'proj-c', 'enabled', { scope: `openid ${CLOUD_SCOPE}` }), acct('gen', 'proj-g', 'enabled', { scope: `openid ${GEMINI_SCOPE}` })]);
  const scopesByService = { gemini_api: [GEMINI_SCOPE], vertex: [CLOUD_SCOPE] };
  assert.deepEqual(new Set(await picks(h, 4, { services: BOTH, scopesByService })), new Set(['gen@gemini_api:proj-g']));
  assert.deepEqual(await picks(h, 2, { services: ['vertex'], scopesByService }), ['cloud@vertex:proj-c', 'cloud@vertex:proj-c']);
});

test('services: canServe says whether any account in rotation has a lane of the service, and follows the store', async () => {
  const h = await poolHarness([acct('a', 'proj-a', 'disabled'), acct('b', null)]);
  assert.equal(h.pool.canServe('gemini_api'), true);
  assert.equal(h.pool.canServe('vertex'), false);
  await assert.rejects(
    h.pool.acquire({ model: 'claude-x', services: ['vertex'] }),
    (e: NoAccountError) => e.code === 'no_service' && e.status === 503 && /Vertex AI/.test(e.message) && /--enable-vertex/.test(e.message),
  );
  await assert.rejects(
    h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' }),
    (e: NoAccountError) => e.code === 'pinned_unusable' && /Vertex AI is not enabled in its project proj-a/.test(e.message),
  );
  await h.store.update('a', (x) => ({ ...x, project: project('enabled') }));
  assert.equal(h.pool.canServe('vertex'), true);
  assert.equal((await h.pool.acquire({ model: 'flash', services: ['vertex'] })).lane, 'vertex:proj-a');
  // taken out of the proxy: no longer in rotation for either service
  await h.store.update('a', (x) => ({ ...x, proxy_disabled: true, proxy_disabled_reason: 'test' }));
  assert.equal(h.pool.canServe('vertex'), false);
  await h.store.update('a', (x) => ({ ...x, proxy_disabled: false, proxy_disabled_reason: null, project: project('disabled') }));
  assert.equal(h.pool.canServe('vertex'), false, 'Vertex AI disabled in its project: the lane is gone');
  await h.store.update('a', (x) => ({ ...x, project: project('enabled'), project_id: 'proj-z' }));
  assert.equal((await h.pool.acquire({ model: 'flash', services: ['vertex'] })).lane, 'vertex:proj-z', 'the lane follows the project');
});

test('services: when every Vertex lane is cooling, the error names Vertex AI and the earliest time', async () => {
  const h = await poolHarness([acct('a', 'proj-a'), acct('b', 'proj-b', 'disabled')]);
  h.pool.report(await h.pool.acquire({ model: 'flash', services: ['vertex'] }), 'flash', { kind: 'rate_limited', untilMs: T0 + 20_000, reason: 'vertex quota' });
  await assert.rejects(
    h.pool.acquire({ model: 'flash', services: ['vertex'] }),
    (e: NoAccountError) => e.code === 'all_cooling_down' && e.retryAfterSeconds === 20 && /on Vertex AI/.test(e.message) && /vertex quota/.test(e.message),
  );
});

test('services: a 401 refresh keeps the lease on its service', async () => {
  const h = await poolHarness([acct('a', 'proj-a')]);
  const l = await h.pool.acquire({ model: 'flash', services: ['vertex'] });
  h.pool.report(l, 'flash', { kind: 'unauthorized' });
  const fresh = await h.pool.refreshAfterUnauthorized(l);
  assert.ok(fresh);
  assert.notEqual(fresh.accessToken, l.accessToken);
  assert.equal(fresh.service, 'vertex');
  assert.equal(fresh.lane, 'vertex:proj-a');
});

test('services: a Vertex 403 about the project takes the account\'s Vertex lane away (at once and in the store); its Gemini API lane serves on', async () => {
  const h = await poolHarness([acct('a', 'proj-a'), acct('b', 'proj-b')]);
  const l = await h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' });
  h.pool.report(l, 'flash', { kind: 'forbidden', reason: 'SERVICE_DISABLED for Vertex AI in project proj-a: off', vertexState: 'disabled' });
  // at once: a is not handed out for Vertex AI, b is
  assert.deepEqual(await picks(h, 3, { services: ['vertex'] }), ['b@vertex:proj-b', 'b@vertex:proj-b', 'b@vertex:proj-b']);
  await assert.rejects(h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' }), (e: NoAccountError) => /SERVICE_DISABLED for Vertex AI in project proj-a/.test(e.message));
  assert.equal((await h.pool.acquire({ model: 'flash', pinned: 'a' })).lane, 'gemini_api:proj-a');
  assert.equal(h.pool.stateOf('a')!.state, 'active');
  // in the store: Vertex AI recorded as disabled there, with the reason; not taken out of the proxy
  await settle();
  const stored = (await h.store.get('a'))!;
  assert.equal(stored.project!.vertex_ai, 'disabled');
  assert.match(stored.project!.vertex_ai_reason!, /SERVICE_DISABLED/);
  assert.equal(stored.proxy_disabled, false);
  assert.deepEqual(h.pool.accountLanes(stored).map((x) => x.key), ['gemini_api:proj-a']);
  // the project checked again (e.g. `--enable-vertex`): the lane is back
  await h.store.update('a', (x) => ({ ...x, project: project('enabled') }));
  assert.equal((await h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' })).lane, 'vertex:proj-a');
});

test('services: a Vertex refusal the store could not record holds through re-reads and unrelated changes; a real project change ends it', async () => {
  const h = await poolHarness([acct('a', 'proj-a'), acct('b', 'proj-b')]);
  const update = h.store.update.bind(h.store);
  let failNext = true;
  h.store.update = (id, change) => {
    if (failNext) {
      failNext = false;
      return Promise.reject(new Error('store unavailable'));
    }
    return update(id, change);
  };
  h.pool.report(await h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' }), 'flash', { kind: 'forbidden', reason: 'PERMISSION_DENIED on Vertex AI in project proj-a', vertexState: 'denied' });
  await settle();
  assert.equal((await h.store.get('a'))!.project!.vertex_ai, 'enabled', 'the store did not take the write');
  const refused = (e: NoAccountError) => e.code === 'pinned_unusable' && /PERMISSION_DENIED on Vertex AI/.test(e.message);
  await assert.rejects(h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' }), refused);
  // the same account read again (a new object, the same project), then an unrelated write
  await h.store.update('a', (x) => x);
  await assert.rejects(h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' }), refused, 'a re-read keeps the Vertex lane off');
  await h.store.update('a', (x) => ({ ...x, last_used: 1_800_000_000 }));
  await assert.rejects(h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' }), refused, 'last_used written: still off');
  assert.deepEqual(await picks(h, 2, { services: ['vertex'] }), ['b@vertex:proj-b', 'b@vertex:proj-b']);
  // the project checked again: the refusal is over
  await h.store.update('a', (x) => ({ ...x, project: { ...project('enabled'), checked_at: 2 } }));
  assert.equal((await h.pool.acquire({ model: 'flash', services: ['vertex'], pinned: 'a' })).lane, 'vertex:proj-a');
});

test('services: each account\'s lanes with their states (cooling per model, quota protected, off)', async () => {
  const h = await poolHarness([acct('a', 'proj-a'), acct('n', null)], {
    config: { quota_protection: { enabled: true, threshold_percent: 0, limits: { pro: { requests_per_day: 1 } } } },
  });
  h.pool.report(await h.pool.acquire({ model: 'flash', pinned: 'a' }), 'flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'gemini quota' });
  h.pool.report(await h.pool.acquire({ model: 'pro', services: ['vertex'], pinned: 'a' }), 'pro', { kind: 'ok' });
  const a = (await h.store.get('a'))!;
  const lanes = h.pool.accountLanes(a);
  assert.deepEqual(lanes.map((l) => [l.key, l.service, l.state]), [
    ['gemini_api:proj-a', 'gemini_api', { state: 'cooling_down', until: (T0 + 60_000) / 1000, reason: 'gemini quota', model: 'flash' }],
    ['vertex:proj-a', 'vertex', { state: 'quota_protected', model: 'pro', until: lanes[1]!.state.state === 'quota_protected' ? lanes[1]!.state.until : 0 }],
  ]);
  assert.deepEqual(h.pool.accountLanes((await h.store.get('n'))!).map((l) => [l.key, l.state.state]), [['gemini_api:client:client-a.apps.googleusercontent.com', 'active']]);
});
