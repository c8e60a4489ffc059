// Lanes: quota belongs to the consumer project (the lane), credentials to the
// account. Accounts with project_id P draw on lane gemini_api:P; accounts
// without one on their OAuth client's project.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeAccount, poolHarness, T0 } from '../support/fake-accounts.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { item, testSelector } from '../support/selector-items.ts';
import { mulberry32 } from '../support/seeded-random.ts';
import { Lanes, laneSeating, type Lane } from '../../src/pool/lanes.ts';
import { Selector } from '../../src/pool/selection.ts';

const onProject = (id: string, project: string | null, extra = {}) => fakeAccount(id, { project_id: project, ...extra });

async function picks(h: Awaited<ReturnType<typeof poolHarness>>, n: number, model = 'flash', sessionKey?: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await h.pool.acquire({ model, sessionKey })).accountId);
  return out;
}

test('lanes: a 429 on one account cools its whole lane for that model; an account on another lane serves', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('q1', 'proj-q')]);
  const lease = await h.pool.acquire({ model: 'flash', pinned: 'p1' });
  assert.equal(lease.lane, 'gemini_api:proj-p');
  h.pool.report(lease, 'flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'RESOURCE_EXHAUSTED: project quota' });

  assert.deepEqual(await picks(h, 4), ['q1', 'q1', 'q1', 'q1'], 'p2 shares the exhausted project: it is not tried');
  assert.deepEqual(h.pool.stateOf('p2'), { state: 'cooling_down', until: (T0 + 60_000) / 1000, reason: 'RESOURCE_EXHAUSTED: project quota', model: 'flash' });
  await assert.rejects(h.pool.acquire({ model: 'flash', pinned: 'p2' }), (e: NoAccountError) => e.code === 'pinned_unusable' && e.status === 429 && e.retryAfterSeconds === 60);
  // another model on the same project is not affected
  assert.deepEqual(new Set(await picks(h, 3, 'pro')), new Set(['p1', 'p2', 'q1']));
  // the lane of q is exhausted too: the client waits for the earlier of the two
  h.pool.report(await h.pool.acquire({ model: 'flash' }), 'flash', { kind: 'rate_limited', untilMs: T0 + 120_000, reason: 'q quota' });
  await assert.rejects(h.pool.acquire({ model: 'flash' }), (e: NoAccountError) => e.code === 'all_cooling_down' && e.retryAfterSeconds === 60);
  h.clock.advance(60_000);
  assert.deepEqual(new Set(await picks(h, 2)), new Set(['p1', 'p2']));
});

test('lanes: accounts without a project share their OAuth client\'s lane; other clients are other lanes', async () => {
  const h = await poolHarness([
    onProject('a', null),
    onProject('b', null),
    onProject('c', null, { oauth_client_id: 'client-other.apps.googleusercontent.com' }),
  ]);
  const la = await h.pool.acquire({ model: 'flash', pinned: 'a' });
  assert.equal(la.lane, 'gemini_api:client:client-a.apps.googleusercontent.com');
  h.pool.report(la, 'flash', { kind: 'rate_limited', untilMs: T0 + 10_000, reason: 'client project quota' });
  assert.deepEqual(await picks(h, 3), ['c', 'c', 'c']);
});

test('lanes: round robin alternates lanes first, then the accounts of a lane', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('p3', 'proj-p'), onProject('q1', 'proj-q')]);
  assert.deepEqual(await picks(h, 8), ['p1', 'q1', 'p2', 'q1', 'p3', 'q1', 'p1', 'q1']);
});

test('lanes: fill first stays on one account until its lane is exhausted, then moves to another lane', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('q1', 'proj-q')], { config: { strategy: 'fill_first' } });
  const first = await h.pool.acquire({ model: 'flash' });
  assert.deepEqual(await picks(h, 3), [first.accountId, first.accountId, first.accountId]);
  h.pool.report(first, 'flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'quota' });
  const next = await picks(h, 3);
  assert.equal(next[0], 'q1', 'not the other account of the exhausted project');
  assert.deepEqual(next, ['q1', 'q1', 'q1']);
});

test('lanes: session affinity keeps its account while its lane serves and moves to another lane after a 429', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('q1', 'proj-q')]);
  const bound = await h.pool.acquire({ model: 'flash', sessionKey: 's' });
  assert.deepEqual(await picks(h, 3, 'flash', 's'), [bound.accountId, bound.accountId, bound.accountId]);
  h.pool.report(bound, 'flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'quota' });
  const moved = await picks(h, 3, 'flash', 's');
  const laneOf = (id: string) => (id.startsWith('p') ? 'p' : 'q');
  assert.notEqual(laneOf(moved[0]!), laneOf(bound.accountId));
  assert.deepEqual(moved, [moved[0], moved[0], moved[0]]);
});

test('lanes: quota protection counts per lane: two accounts on one project use up one quota', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('q1', 'proj-q')], {
    config: { quota_protection: { enabled: true, threshold_percent: 0, limits: { flash: { requests_per_day: 4 } } } },
  });
  for (const id of ['p1', 'p2', 'p1', 'p2']) {
    h.pool.report(await h.pool.acquire({ model: 'flash', pinned: id }), 'flash', { kind: 'ok' });
  }
  assert.equal(h.pool.stateOf('p1')!.state, 'quota_protected');
  assert.equal(h.pool.stateOf('p2')!.state, 'quota_protected');
  assert.equal(h.pool.stateOf('q1')!.state, 'active');
  assert.deepEqual(await picks(h, 3), ['q1', 'q1', 'q1']);
  // the usage chart still counts per account
  assert.deepEqual(h.pool.usageToday('p1'), { requests: 2, tokens: 0 });
});

test('lanes: when an account\'s project_id changes in the store, its lane changes at once', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('q1', 'proj-q')]);
  h.pool.report(await h.pool.acquire({ model: 'flash', pinned: 'p1' }), 'flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'quota' });
  assert.equal(h.pool.stateOf('p2')!.state, 'cooling_down');
  await h.store.update('p2', (a) => ({ ...a, project_id: 'proj-r' }));
  assert.equal(h.pool.stateOf('p2')!.state, 'active', 'its new project has its own quota');
  assert.equal((await h.pool.acquire({ model: 'flash', pinned: 'p2' })).lane, 'gemini_api:proj-r');
  assert.deepEqual(new Set(await picks(h, 4)), new Set(['p2', 'q1']));
  assert.equal(h.pool.stateOf('p1')!.state, 'cooling_down');
  // and moving onto an exhausted project takes its cooldown on
  await h.store.update('q1', (a) => ({ ...a, project_id: 'proj-p' }));
  assert.deepEqual(await picks(h, 2), ['p2', 'p2']);
});

test('lanes: each account shows its lane, and shared lanes carry a warning that says how to fix it', async () => {
  const h = await poolHarness([
    onProject('a', null), onProject('b', null), onProject('c', null),
    onProject('p1', 'proj-p'), onProject('p2', 'proj-p'),
    onProject('solo', 'proj-solo'),
  ]);
  const a = (await h.store.get('a'))!;
  assert.deepEqual(h.pool.accountLane(a), {
    key: 'gemini_api:client:client-a.apps.googleusercontent.com',
    service: 'gemini_api',
    project_id: null,
    oauth_client_id: 'client-a.apps.googleusercontent.com',
    accounts: 3,
    warning: "3 accounts share the quota of the OAuth client's project: give each its own project",
  });
  assert.deepEqual(h.pool.accountLane((await h.store.get('solo'))!), {
    key: 'gemini_api:proj-solo', service: 'gemini_api', project_id: 'proj-solo', oauth_client_id: null, accounts: 1, warning: null,
  });
  const shared = h.pool.sharedLanes();
  assert.deepEqual(shared.map((l) => [l.key, l.accounts, l.account_ids.sort(), l.warning]), [
    ['gemini_api:client:client-a.apps.googleusercontent.com', 3, ['a', 'b', 'c'], "3 accounts share the quota of the OAuth client's project: give each its own project"],
    ['gemini_api:proj-p', 2, ['p1', 'p2'], '2 accounts share the quota of project proj-p: give each its own project'],
  ]);
  const s = h.pool.summary();
  assert.equal(s.lanes, 3);
  assert.deepEqual(s.shared_lanes, shared);
  // an account the pool has not seen yet is shown on the lane it would join
  assert.equal(h.pool.accountLane(onProject('new', 'proj-p')).accounts, 3);
  await h.store.update('b', (x) => ({ ...x, project_id: 'proj-b' }));
  assert.equal(h.pool.accountLane(a).accounts, 2);
  await h.store.remove('c');
  assert.equal(h.pool.accountLane(a).warning, null);
  assert.equal(h.pool.sharedLanes().length, 1);
});

test('selector: items spread over lanes; a lane ruled out is skipped whole; an item moves with its lane', () => {
  const s = testSelector({ strategy: 'round_robin', sessionAffinity: false });
  const [a, b, c] = [item('a', 'x'), item('b', 'x'), item('c', 'y')];
  for (const it of [a, b, c]) s.add(it);
  assert.equal(s.laneCount, 2);
  assert.deepEqual(Array.from({ length: 4 }, () => s.pick(() => true)!.id), ['a', 'c', 'b', 'c']);
  // a lane ruled out as a whole is skipped
  assert.deepEqual(Array.from({ length: 3 }, () => s.pick(() => true, undefined, (x) => x.lane !== 'y')!.id), ['a', 'b', 'a']);
  // an item whose lane changes moves (out of the selector while it changes, as the pool does)
  s.remove(a);
  a.lane = 'y';
  s.add(a);
  assert.equal(s.laneCount, 2);
  s.remove(b);
  assert.equal(s.laneCount, 1);
  assert.deepEqual(new Set(Array.from({ length: 4 }, () => s.pick(() => true)!.id)), new Set(['a', 'c']));
});

test('lanes and selectors: members out of rotation stay on their lane; places, counts and round robin stay right through random moves', () => {
  interface M { readonly id: string; lane: Lane<M>; vertexLane: Lane<M> | null; ringAt: number; vertexRingAt: number }
  for (let seed = 1; seed <= 100; seed++) {
    const rnd = mulberry32(seed);
    const lanes = new Lanes<M>();
    const selectors = { gemini_api: new Selector<M>({ strategy: 'round_robin', sessionAffinity: false, seating: laneSeating<M>('gemini_api') }), vertex: new Selector<M>({ strategy: 'round_robin', sessionAffinity: false, seating: laneSeating<M>('vertex') }) };
    const members = Array.from({ length: 12 }, (_, i): M => ({ id: `m${i}`, lane: null as unknown as Lane<M>, vertexLane: null, ringAt: -1, vertexRingAt: -1 }));
    const placed = new Map<M, { gemini: string; vertex: string | null }>();
    const inRotation = new Set<M>();
    const out = (m: M) => {
      selectors.gemini_api.remove(m);
      selectors.vertex.remove(m);
      inRotation.delete(m);
    };
    for (let step = 0; step < 300; step++) {
      const m = members[Math.floor(rnd() * members.length)]!;
      const r = rnd();
      if (r < 0.4) {
        const project = rnd() < 0.3 ? null : `p${Math.floor(rnd() * 4)}`;
        const vertex = project !== null && rnd() < 0.5;
        const account = { project_id: project, oauth_client_id: 'client-a', project: vertex ? { vertex_ai: 'enabled' } : undefined } as Parameters<Lanes<M>['place']>[1];
        // as the mirror does: out of the selectors before it moves, back in after
        const back = inRotation.has(m);
        if (lanes.moves(m, account)) out(m);
        lanes.place(m, account);
        placed.set(m, { gemini: project ? `gemini_api:${project}` : 'gemini_api:client:client-a', vertex: vertex ? `vertex:${project}` : null });
        if (back) inRotation.add(m);
      } else if (r < 0.5) {
        out(m);
        lanes.leave(m);
        placed.delete(m);
      } else if (r < 0.8 && placed.has(m)) {
        inRotation.add(m);
      } else if (r < 0.9) {
        out(m);
      }
      for (const x of inRotation) {
        selectors.gemini_api.add(x);
        if (x.vertexLane) selectors.vertex.add(x);
      }
      // every member sits on the lanes it was placed on, and nowhere else
      for (const x of members) {
        const p = placed.get(x);
        assert.equal(x.lane?.has(x) ?? false, !!p, `${x.id} on its lane (seed ${seed}, step ${step})`);
        if (!p) continue;
        assert.equal(x.lane.key, p.gemini);
        assert.equal(lanes.get(p.gemini), x.lane);
        assert.equal(x.vertexLane?.key ?? null, p.vertex);
        if (p.vertex) assert.equal(lanes.get(p.vertex), x.vertexLane);
        assert.equal(selectors.gemini_api.has(x), inRotation.has(x));
        assert.equal(selectors.vertex.has(x), inRotation.has(x) && !!p.vertex);
      }
      for (const lane of lanes.values()) {
        const on = [...placed].filter(([, p]) => p.gemini === lane.key || p.vertex === lane.key).map(([x]) => x);
        assert.deepEqual(new Set(lane.items), new Set(on), `members of ${lane.key}`);
        assert.equal(lane.size, on.filter((x) => inRotation.has(x)).length, `in rotation on ${lane.key}`);
      }
      assert.equal(lanes.size, new Set([...placed.values()].flatMap((p) => (p.vertex ? [p.gemini, p.vertex] : [p.gemini]))).size);
      // round robin: as many picks as lanes in rotation visit each of them once, and only accounts in rotation
      const s = selectors.gemini_api;
      assert.equal(s.size, inRotation.size);
      const round = Array.from({ length: s.laneCount }, () => s.pick(() => true)!);
      assert.ok(round.every((x) => inRotation.has(x)));
      assert.equal(new Set(round.map((x) => x.lane.key)).size, new Set([...inRotation].map((x) => x.lane.key)).size);
    }
  }
});

test('lanes: an account out of rotation still counts on its lane; back in, it takes its turn again', async () => {
  const h = await poolHarness([onProject('p1', 'proj-p'), onProject('p2', 'proj-p'), onProject('q1', 'proj-q')]);
  await h.store.update('p2', (x) => ({ ...x, proxy_disabled: true, proxy_disabled_reason: 'test' }));
  assert.deepEqual(h.pool.sharedLanes().map((l) => [l.key, l.account_ids]), [['gemini_api:proj-p', ['p1', 'p2']]]);
  assert.equal(h.pool.accountLane((await h.store.get('p1'))!).accounts, 2);
  assert.deepEqual(await picks(h, 4), ['p1', 'q1', 'p1', 'q1']);
  await h.store.update('p2', (x) => ({ ...x, proxy_disabled: false, proxy_disabled_reason: null }));
  assert.deepEqual(new Set(await picks(h, 4)), new Set(['p1', 'p2', 'q1']));
});
