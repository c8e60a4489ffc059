// Session affinity from every client that names its conversation: two turns
// with the same key are served by the same account (the real pool, round
// robin underneath), while requests without a key move on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startProxy, type Harness } from '../support/proxy-harness.ts';
import { fakeAccount, poolHarness, type Harness as PoolHarness } from '../support/fake-accounts.ts';

let h: Harness;
let p: PoolHarness;
before(async () => {
  p = await poolHarness(['a', 'b', 'c'].map((id) => fakeAccount(id)));
  h = await startProxy({ pool: p.pool, clock: p.clock, upstream: { validateToken: (t) => t.startsWith('ya29.') } });
});
after(async () => {
  await h.close();
  await p.pool.stop();
});

const lastAccount = () => h.requestLog.query({ limit: 1 })[0]!.email;

function chat(headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  return fetch(`${h.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
}

/** Turn 1, a keyless request in between (round robin moves on), turn 2: the account of each. */
async function twoTurns(turn: () => Promise<unknown>): Promise<[string | null, string | null, string | null]> {
  await turn();
  const first = lastAccount();
  assert.equal((await chat()).status, 200);
  const between = lastAccount();
  await turn();
  return [first, between, lastAccount()];
}

test('without a key, requests rotate between accounts (the control)', async () => {
  const seen = new Set<string | null>();
  for (let i = 0; i < 3; i++) {
    assert.equal((await chat()).status, 200);
    seen.add(lastAccount());
  }
  assert.equal(seen.size, 3);
});

const headerCases: Array<[string, string]> = [
  ['X-Grantpool-Session (any client)', 'x-grantpool-session'],
  ['session_id (Codex CLI)', 'session_id'],
  ['x-session-affinity (opencode)', 'x-session-affinity'],
  ['x-session-id (opencode)', 'x-session-id'],
];
for (const [name, header] of headerCases) {
  test(`header ${name}: both turns on the same account`, async () => {
    const key = `conv-${header}`;
    const [first, between, second] = await twoTurns(async () => assert.equal((await chat({ [header]: key })).status, 200));
    assert.equal(second, first);
    assert.notEqual(between, first, 'the keyless request in between went elsewhere');
  });
}

test('OpenAI body fields user and prompt_cache_key: both turns on the same account', async () => {
  const openai = new OpenAI({ apiKey: 'k', baseURL: `${h.url}/v1`, maxRetries: 0 });
  for (const field of ['user', 'prompt_cache_key'] as const) {
    const [first, , second] = await twoTurns(() =>
      openai.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], [field]: `key-${field}` }),
    );
    assert.equal(second, first, field);
  }
});

test('Anthropic metadata.user_id (Claude Code): both turns on the same account', async () => {
  const anthropic = new Anthropic({ apiKey: 'k', baseURL: h.url, maxRetries: 0 });
  const [first, , second] = await twoTurns(() =>
    anthropic.messages.create({
      model: 'gemini-2.5-flash',
      max_tokens: 50,
      metadata: { user_id: 'user_1_account__session_42' },
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  assert.equal(second, first);
});

test('the Gemini door reads the session headers too', async () => {
  const gen = () =>
    fetch(`${h.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'gemini-conv' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    }).then((r) => assert.equal(r.status, 200));
  const [first, , second] = await twoTurns(gen);
  assert.equal(second, first);
});
