// The router: literal segments, `:name`, a trailing `*rest`, 405 with the allowed methods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, type Handler } from '../../src/http/router.ts';

const h = (name: string): Handler => Object.assign(() => {}, { label: name });
const label = (m: ReturnType<Router['match']>) => (m && 'handler' in m ? (m.handler as unknown as { label: string }).label : m);

const router = new Router()
  .on('GET', '/v1/models', h('list'))
  .on('GET', '/v1/models/:model', h('get'))
  .on('POST', '/v1/models/:modelAction', h('generate'))
  .on('ANY', '/google/*path', h('google'))
  .on('GET', '/', h('home'));

test('routes match on their segments, parameters decoded', () => {
  assert.equal(label(router.match('GET', '/v1/models')), 'list');
  assert.equal(label(router.match('GET', '/v1/models/')), 'list');
  const got = router.match('POST', '/v1/models/gemini-2.5-flash%3AgenerateContent');
  assert.ok(got && 'params' in got);
  assert.deepEqual(got.params, { modelAction: 'gemini-2.5-flash:generateContent' });
  assert.equal(label(router.match('HEAD', '/v1/models/m')), 'get');
  assert.equal(label(router.match('GET', '/')), 'home');
});

test('a trailing *rest takes any number of segments, none included', () => {
  const deep = router.match('DELETE', '/google/drive/v3/files/abc%2Fdef');
  assert.ok(deep && 'params' in deep);
  assert.equal(deep.params.path, 'drive/v3/files/abc/def');
  const bare = router.match('GET', '/google');
  assert.ok(bare && 'params' in bare);
  assert.equal(bare.params.path, '');
});

test('too many or too few segments do not match; a known path with another method is 405', () => {
  assert.equal(router.match('GET', '/v1/models/m/extra'), null);
  assert.equal(router.match('GET', '/v1'), null);
  assert.deepEqual(router.match('PUT', '/v1/models/m'), { allowed: ['GET', 'POST'] });
});
