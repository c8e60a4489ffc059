// Gemini on Vertex AI, the pure parts: the body Vertex AI takes (role on every
// content, countTokens at the top level), what must stay on the Gemini API,
// the per-lease target, and what Vertex AI's errors mean for the pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { geminiServices, geminiTarget, vertexGeminiBody, vertexUnsupported } from '../../src/proxy/vertex-gemini.ts';
import { classifyUpstream } from '../../src/proxy/upstream-errors.ts';
import type { Lease } from '../../src/pool/types.ts';

test('vertexGeminiBody: role "user" on contents without one; the rest as it is (the same object when nothing is missing)', () => {
  const body = { contents: [{ parts: [{ text: 'a' }] }, { role: 'model', parts: [{ text: 'b' }] }, { role: '', parts: [] }], generationConfig: { temperature: 0 } };
  assert.deepEqual(vertexGeminiBody(body, 'generateContent'), {
    contents: [{ role: 'user', parts: [{ text: 'a' }] }, { role: 'model', parts: [{ text: 'b' }] }, { role: 'user', parts: [] }],
    generationConfig: { temperature: 0 },
  });
  assert.equal(body.contents[0]!.hasOwnProperty('role'), false, 'the client body is not changed');
  const ok = { contents: [{ role: 'user', parts: [{ text: 'x' }] }] };
  assert.equal(vertexGeminiBody(ok, 'streamGenerateContent'), ok);
});

test('vertexGeminiBody: countTokens takes contents, systemInstruction, tools and generationConfig at the top level', () => {
  const wrapped = {
    generateContentRequest: {
      model: 'models/gemini-2.5-flash',
      contents: [{ parts: [{ text: 'hi' }] }],
      system_instruction: { parts: [{ text: 'sys' }] },
      tools: [{ functionDeclarations: [{ name: 'f' }] }],
      generationConfig: { maxOutputTokens: 5 },
      safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_NONE' }],
      toolConfig: { functionCallingConfig: { mode: 'AUTO' } },
    },
  };
  assert.deepEqual(vertexGeminiBody(wrapped, 'countTokens'), {
    contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
    systemInstruction: { parts: [{ text: 'sys' }] },
    tools: [{ functionDeclarations: [{ name: 'f' }] }],
    generationConfig: { maxOutputTokens: 5 },
  });
  assert.deepEqual(vertexGeminiBody({ contents: [{ parts: [{ text: 'x' }] }] }, 'countTokens'), { contents: [{ role: 'user', parts: [{ text: 'x' }] }] });
});

test('what lives in the Gemini API only keeps a request there', () => {
  const cfg = { gemini_services: ['gemini_api', 'vertex'] as const };
  const plain = { contents: [{ role: 'user', parts: [{ text: 'x' }] }] };
  assert.equal(vertexUnsupported(plain, 'generateContent'), null);
  assert.deepEqual(geminiServices(cfg, plain, 'generateContent'), ['gemini_api', 'vertex']);
  const cached = { ...plain, cachedContent: 'cachedContents/abc' };
  assert.match(vertexUnsupported(cached, 'generateContent')!, /cached content/);
  assert.deepEqual(geminiServices(cfg, cached, 'generateContent'), ['gemini_api']);
  const file = { contents: [{ role: 'user', parts: [{ fileData: { mimeType: 'application/pdf', fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } }] }] };
  assert.match(vertexUnsupported(file, 'generateContent')!, /file uploaded to the Gemini API/);
  assert.equal(vertexUnsupported({ contents: [{ parts: [{ file_data: { file_uri: 'gs://bucket/x.pdf' } }] }] }, 'generateContent'), null, 'a Cloud Storage file is fine on Vertex');
  assert.match(vertexUnsupported({ generateContentRequest: cached }, 'countTokens')!, /cached content/);
  assert.match(vertexUnsupported({ ...plain, tools: [{ fileSearch: { fileSearchStoreNames: ['x'] } }] }, 'generateContent')!, /File Search/);
  assert.deepEqual(geminiServices({ gemini_services: ['vertex'] }, cached, 'generateContent'), ['vertex'], 'Vertex only by configuration: Vertex AI answers for itself');
  assert.deepEqual(geminiServices({ gemini_services: ['gemini_api'] }, plain, 'generateContent'), ['gemini_api']);
});

test('without a Vertex lane the request body is not walked: the services are the configured ones', () => {
  const cfg = { gemini_services: ['gemini_api', 'vertex'] as const };
  const walked = { get contents(): unknown { throw new Error('walked'); } };
  assert.deepEqual(geminiServices(cfg, walked, 'generateContent', false), ['gemini_api', 'vertex']);
  assert.throws(() => geminiServices(cfg, walked, 'generateContent', true), /walked/);
});

test('geminiTarget: the Gemini API call for a Gemini API lease, Vertex AI in the lease\'s project for a Vertex lease (body built once)', () => {
  const lease = (service: 'gemini_api' | 'vertex', p: string): Lease => ({ accountId: 'a', email: 'a@x', projectId: p, accessToken: 't', service, lane: `${service}:${p}` });
  const gemini = { origin: 'https://generativelanguage.googleapis.com', path: '/v1beta/models/m:streamGenerateContent?alt=sse' };
  const t = geminiTarget({ gemini, cfg: { vertex_base_url: 'https://aiplatform.googleapis.com', vertex_location: 'us-central1' }, model: 'm', method: 'streamGenerateContent', body: { contents: [{ parts: [] }] } });
  assert.equal(t(lease('gemini_api', 'p')), gemini);
  const v1 = t(lease('vertex', 'p1'));
  assert.equal(v1.origin, 'https://us-central1-aiplatform.googleapis.com');
  assert.equal(v1.path, '/v1/projects/p1/locations/us-central1/publishers/google/models/m:streamGenerateContent?alt=sse');
  assert.deepEqual(JSON.parse(v1.body!.toString()), { contents: [{ role: 'user', parts: [] }] });
  assert.equal(t(lease('vertex', 'p2')).body, v1.body);
  // the Gemini door's own query (here a JSON-array stream) replaces alt=sse
  const arr = geminiTarget({ gemini, cfg: { vertex_base_url: 'http://127.0.0.1:1', vertex_location: 'global' }, model: 'm', method: 'streamGenerateContent', body: {}, query: '' });
  assert.equal(arr(lease('vertex', 'p')).path, '/v1/projects/p/locations/global/publishers/google/models/m:streamGenerateContent');
});

const account = { email: 'ann@example.com', projectId: 'ann-proj' };
const err = (status: number, message: string, details: unknown[] = [], s = 'PERMISSION_DENIED') => JSON.stringify({ error: { code: status, message, status: s, details } });

test('Vertex AI 403s about the project take the Vertex lane (not the account) away, with the fix; others go back to the client', () => {
  const disabled = err(403, 'Vertex AI API has not been used in project ann-proj before or it is disabled.', [
    { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'SERVICE_DISABLED', metadata: { service: 'aiplatform.googleapis.com', consumer: 'projects/ann-proj', activationUrl: 'https://console.developers.google.com/apis/api/aiplatform.googleapis.com/overview?project=ann-proj' } },
  ]);
  const o = classifyUpstream(403, disabled, 0, { account, service: 'vertex' });
  assert.equal(o.kind, 'forbidden');
  assert.equal((o as any).vertexState, 'disabled');
  assert.match((o as any).reason, /^SERVICE_DISABLED for Vertex AI in project ann-proj: .*grantpool accounts project ann@example\.com --enable-vertex ann-proj/);
  // the same body from the Gemini API names another service: not a Gemini API project error
  const iam = err(403, "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/ann-proj/locations/global/publishers/google/models/m' (or it may not exist).");
  const d = classifyUpstream(403, iam, 0, { account, service: 'vertex' });
  assert.equal((d as any).vertexState, 'denied');
  assert.match((d as any).reason, /roles\/aiplatform\.user/);
  // a 403 about something the request names stays the client's
  assert.deepEqual(classifyUpstream(403, err(403, 'The caller does not have permission to read gs://other/file'), 0, { account, service: 'vertex' }), { kind: 'client_error' });
  // Vertex's 429 has no RetryInfo: the default cooldown
  const r = classifyUpstream(429, err(429, 'Resource exhausted. Please try again later.', [], 'RESOURCE_EXHAUSTED'), 1000, { account, service: 'vertex' });
  assert.equal(r.kind, 'rate_limited');
  assert.equal((r as any).untilMs, 1000 + 30_000);
  // an array-wrapped error body (Vertex's streaming methods)
  const wrapped = `[${disabled}]`;
  assert.equal((classifyUpstream(403, wrapped, 0, { account, service: 'vertex' }) as any).vertexState, 'disabled');
});
