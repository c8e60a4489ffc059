// Vertex AI URLs: the project and location in the path, the regional host for
// a regional location with the default base URL, `?alt=sse` for Gemini streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vertexOrigin, vertexUrl } from '../../src/proxy/vertex-url.ts';

const global = { vertex_base_url: 'https://aiplatform.googleapis.com', vertex_location: 'global' };

test('vertexUrl: Gemini on the global endpoint', () => {
  assert.deepEqual(vertexUrl(global, 'my-proj', 'google', 'gemini-2.5-flash', 'generateContent'), {
    origin: 'https://aiplatform.googleapis.com',
    path: '/v1/projects/my-proj/locations/global/publishers/google/models/gemini-2.5-flash:generateContent',
  });
  assert.equal(
    vertexUrl(global, 'my-proj', 'google', 'gemini-2.5-flash', 'streamGenerateContent').path,
    '/v1/projects/my-proj/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
  );
  assert.equal(vertexUrl(global, 'my-proj', 'google', 'gemini-2.5-flash', 'countTokens').path, '/v1/projects/my-proj/locations/global/publishers/google/models/gemini-2.5-flash:countTokens');
});

test('vertexUrl: Claude on a regional endpoint (model ids keep their @version; streamRawPredict gets no alt=sse)', () => {
  const cfg = { vertex_base_url: 'https://aiplatform.googleapis.com/', vertex_location: 'us-east5' };
  assert.equal(vertexOrigin(cfg), 'https://us-east5-aiplatform.googleapis.com');
  assert.deepEqual(vertexUrl(cfg, 'p-1', 'anthropic', 'claude-opus-4-5@20251101', 'streamRawPredict'), {
    origin: 'https://us-east5-aiplatform.googleapis.com',
    path: '/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-opus-4-5@20251101:streamRawPredict',
  });
  assert.equal(vertexUrl(cfg, 'p-1', 'anthropic', 'count-tokens', 'rawPredict').path, '/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict');
});

test('vertexUrl: another base URL (a stand-in, a private endpoint) is used as it is, for any location', () => {
  const cfg = { vertex_base_url: 'http://127.0.0.1:4321', vertex_location: 'europe-west4' };
  assert.equal(vertexOrigin(cfg), 'http://127.0.0.1:4321');
  assert.equal(vertexUrl(cfg, 'p', 'google', 'm', 'generateContent').origin, 'http://127.0.0.1:4321');
  // a name that is not a plain path segment cannot change the path
  assert.equal(vertexUrl(cfg, 'p', 'google', '../x?y', 'generateContent').path, '/v1/projects/p/locations/europe-west4/publishers/google/models/..%2Fx%3Fy:generateContent');
});

test('vertexUrl: paths are kept per project, location and base URL (one call\'s answer is never another\'s)', () => {
  const a = { vertex_base_url: 'https://aiplatform.googleapis.com', vertex_location: 'us-east5' };
  const b = { vertex_base_url: 'http://127.0.0.1:9', vertex_location: 'europe-west4' };
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(vertexUrl(a, 'p-1', 'anthropic', 'claude-x', 'rawPredict'), { origin: 'https://us-east5-aiplatform.googleapis.com', path: '/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-x:rawPredict' });
    assert.equal(vertexUrl(a, 'p-2', 'anthropic', 'claude-x', 'rawPredict').path, '/v1/projects/p-2/locations/us-east5/publishers/anthropic/models/claude-x:rawPredict');
    assert.deepEqual(vertexUrl(b, 'p-1', 'anthropic', 'claude-x', 'rawPredict'), { origin: 'http://127.0.0.1:9', path: '/v1/projects/p-1/locations/europe-west4/publishers/anthropic/models/claude-x:rawPredict' });
    assert.equal(vertexUrl(a, 'p-1', 'google', 'claude-x', 'streamGenerateContent').path, '/v1/projects/p-1/locations/us-east5/publishers/google/models/claude-x:streamGenerateContent?alt=sse');
  }
});
