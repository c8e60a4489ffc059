// Alias targets that name a family (family:pro / flash / flash-lite) follow
// the live model list: the newest model of the family, a fallback before any
// list, and a new model (or a retired one) once the list is read again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FamilyResolver, newestOfFamily } from '../../src/proxy/model-families.ts';
import { ModelAliases, ModelListCache, type GeminiModel } from '../../src/proxy/models.ts';
import { DEFAULT_MODEL_ALIASES } from '../../src/config/schema.ts';
import { startProxy, type Harness } from '../support/proxy-harness.ts';

const gen = ['generateContent', 'countTokens'];
const m = (id: string, methods = gen): GeminiModel => ({ name: `models/${id}`, supportedGenerationMethods: methods });
const current = [
  m('gemini-2.0-flash-001'),
  m('gemini-2.5-flash'),
  m('gemini-2.5-flash-lite'),
  m('gemini-2.5-flash-preview-09-2025'),
  m('gemini-2.5-flash-image'),
  m('gemini-2.5-pro'),
  m('gemini-3-pro-preview'),
  m('gemini-3.5-flash-lite'),
  m('gemini-3.8-flash'),
  m('gemini-3.8-flash-preview-05-2026'),
  m('gemini-3.9-flash-live', ['bidiGenerateContent']),
  m('gemini-flash-latest'),
  m('gemini-embedding-001', ['embedContent']),
];

test('the newest model of a family: highest version, stable before preview, never a neighbouring family', () => {
  assert.equal(newestOfFamily(current, 'flash'), 'gemini-3.8-flash');
  assert.equal(newestOfFamily(current, 'flash-lite'), 'gemini-3.5-flash-lite');
  assert.equal(newestOfFamily(current, 'pro'), 'gemini-3-pro-preview');
  assert.equal(newestOfFamily(current, 'ultra'), null);
  assert.equal(newestOfFamily([m('gemini-3.8-flash-preview-05-2026'), m('gemini-3.8-flash')], 'flash'), 'gemini-3.8-flash');
  assert.equal(newestOfFamily([m('gemini-2.5-flash-001'), m('gemini-2.5-flash')], 'flash'), 'gemini-2.5-flash');
});

test('aliases: a family target resolves through the live list; before any list, the fallback; explicit names pass through', () => {
  const aliases = new ModelAliases(DEFAULT_MODEL_ALIASES);
  assert.equal(aliases.resolve('claude-sonnet-4-5'), 'gemini-2.5-flash', 'fallback without a resolver');
  let list: GeminiModel[] | null = null;
  const families = new FamilyResolver(() => list);
  assert.equal(aliases.resolve('claude-opus-4-1', families.pick), 'gemini-2.5-pro', 'fallback before the first list');
  list = current;
  assert.equal(aliases.resolve('claude-sonnet-4-5', families.pick), 'gemini-3.8-flash');
  assert.equal(aliases.resolve('claude-haiku-4-5', families.pick), 'gemini-3.5-flash-lite');
  assert.equal(aliases.resolve('gpt-5.1-codex', families.pick), 'gemini-3.8-flash');
  assert.equal(aliases.resolve('gemini-3.5-flash-lite', families.pick), 'gemini-3.5-flash-lite');
  assert.equal(aliases.resolve('gemini-2.5-flash', families.pick), 'gemini-2.5-flash');
  assert.equal(aliases.target('claude-opus-4-1'), 'family:pro');
});

test('a retired model drops out and a new one comes in when the list is read again', async () => {
  let now = 0;
  let upstream = current;
  const cache = new ModelListCache(async () => upstream, 60_000, () => now);
  const families = new FamilyResolver(() => cache.peek());
  assert.equal(cache.due(600_000), true);
  await cache.get();
  assert.equal(families.pick('flash'), 'gemini-3.8-flash');
  upstream = [...current.filter((x) => !x.name.includes('3.8-flash')), m('gemini-4-flash')];
  now = 300_000;
  assert.equal(cache.due(600_000), false, 'not yet due');
  assert.equal(families.pick('flash'), 'gemini-3.8-flash');
  now = 700_000;
  assert.equal(cache.due(600_000), true);
  await cache.get();
  assert.equal(families.pick('flash'), 'gemini-4-flash');
  upstream = current.filter((x) => !/flash/.test(x.name));
  now = 1_400_000;
  await cache.get();
  assert.equal(families.pick('flash'), 'gemini-2.5-flash', 'no flash model left: the fallback');
});

let h: Harness | null = null;
after(() => h?.close());

test('/v1/models shows what each alias resolves to, and requests follow it', async () => {
  h = await startProxy({
    accounts: ['a'],
    upstream: { models: [{ name: 'models/gemini-2.5-flash' }, { name: 'models/gemini-3.8-flash' }, { name: 'models/gemini-3.5-flash-lite' }, { name: 'models/gemini-2.5-pro' }].map((x) => ({ ...x, supportedGenerationMethods: gen })) },
  });
  const chat = (model: string) =>
    fetch(`${h!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }) });
  const list = (await (await fetch(`${h.url}/v1/models`)).json()) as { data: any[] };
  const sonnet = list.data.find((d) => d.id === 'claude-sonnet-*');
  assert.deepEqual({ owned_by: sonnet.owned_by, target: sonnet.target, resolves_to: sonnet.resolves_to }, { owned_by: 'grantpool-alias', target: 'family:flash', resolves_to: 'gemini-3.8-flash' });
  assert.equal(list.data.find((d) => d.id === 'claude-haiku-*').resolves_to, 'gemini-3.5-flash-lite');
  assert.equal(list.data.find((d) => d.id === 'gemini-2.5-flash').owned_by, 'google');
  const one = (await (await fetch(`${h.url}/v1/models/gpt-4o`)).json()) as any;
  assert.deepEqual([one.target, one.resolves_to], ['family:flash', 'gemini-3.8-flash']);
  const gem = (await (await fetch(`${h.url}/v1beta/models`)).json()) as { models: any[] };
  assert.match(gem.models.find((x) => x.name === 'models/claude-opus-*').description, /newest pro model, now gemini-2\.5-pro/);

  const forDashboard = h.routes.aliases();
  assert.deepEqual(forDashboard.find((a) => a.alias === 'claude-haiku-*'), { alias: 'claude-haiku-*', target: 'family:flash-lite', model: 'gemini-3.5-flash-lite' });

  assert.equal((await chat('claude-sonnet-4-5')).status, 200);
  assert.equal(h.upstream.requests.at(-1)!.model, 'gemini-3.8-flash');
  assert.equal(h.requestLog.query({ limit: 1 })[0]!.model_used, 'gemini-3.8-flash');
  assert.equal((await chat('gemini-2.5-flash')).status, 200);
  assert.equal(h.upstream.requests.at(-1)!.model, 'gemini-2.5-flash', 'an explicit model name keeps working');
});
