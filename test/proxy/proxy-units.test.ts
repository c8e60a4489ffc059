// The small pieces of the proxy: error classification, quota reset time, aliases, request log, SSE reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyUpstream, nextPacificMidnight, parseDuration, DEFAULT_RATE_LIMIT_COOLDOWN_MS } from '../../src/proxy/upstream-errors.ts';
import { ModelAliases } from '../../src/proxy/models.ts';
import { createRequestLog, type RequestLogEntry } from '../../src/proxy/request-log.ts';
import { findUsage, SseReader } from '../../src/proxy/sse.ts';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

test('429 with RetryInfo cools for retryDelay; without details for the default; daily quotas until LA midnight', () => {
  const withRetry = JSON.stringify({
    error: {
      code: 429,
      message: 'You exceeded your current quota',
      status: 'RESOURCE_EXHAUSTED',
      details: [
        { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ quotaMetric: 'm', quotaId: 'GenerateRequestsPerMinutePerProjectPerModel' }] },
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '37s' },
      ],
    },
  });
  const o = classifyUpstream(429, withRetry, NOW);
  assert.equal(o.kind, 'rate_limited');
  assert.equal((o as { untilMs: number }).untilMs, NOW + 37_000);
  assert.match((o as { reason: string }).reason, /retry in 37s: You exceeded your current quota/);

  const bare = classifyUpstream(429, '{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}', NOW);
  assert.equal((bare as { untilMs: number }).untilMs, NOW + DEFAULT_RATE_LIMIT_COOLDOWN_MS);

  const daily = JSON.stringify({
    error: {
      code: 429,
      message: 'quota',
      status: 'RESOURCE_EXHAUSTED',
      details: [
        { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests', quotaId: 'GenerateRequestsPerDayPerProjectPerModel' }] },
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '5s' },
      ],
    },
  });
  const d = classifyUpstream(429, daily, NOW);
  // 12:00 UTC on 15 Jan = 04:00 PST; next midnight PST = 16 Jan 08:00 UTC.
  assert.equal((d as { untilMs: number }).untilMs, Date.UTC(2026, 0, 16, 8, 0, 0));
  assert.match((d as { reason: string }).reason, /daily quota/);
});

test('next Pacific midnight is DST aware', () => {
  // Summer (PDT, UTC-7): 15 Jul 2026 20:00 UTC = 13:00 PDT -> 16 Jul 07:00 UTC.
  assert.equal(nextPacificMidnight(Date.UTC(2026, 6, 15, 20)), Date.UTC(2026, 6, 16, 7));
  // Just after midnight PST.
  assert.equal(nextPacificMidnight(Date.UTC(2026, 0, 15, 8, 0, 1)), Date.UTC(2026, 0, 16, 8));
  // Day DST starts (8 Mar 2026): 01:00 PST = 09:00 UTC -> next midnight is 9 Mar 00:00 PDT = 07:00 UTC.
  assert.equal(nextPacificMidnight(Date.UTC(2026, 2, 8, 9)), Date.UTC(2026, 2, 9, 7));
  // Day DST ends (1 Nov 2026): 00:30 PDT = 07:30 UTC -> 2 Nov 00:00 PST = 08:00 UTC.
  assert.equal(nextPacificMidnight(Date.UTC(2026, 10, 1, 7, 30)), Date.UTC(2026, 10, 2, 8));
});

test('403, 401, 5xx and other 4xx', () => {
  const disabled = JSON.stringify({
    error: {
      code: 403,
      message: 'Generative Language API has not been used in project 42 before or it is disabled.',
      status: 'PERMISSION_DENIED',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'SERVICE_DISABLED', metadata: { activationUrl: 'https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=42' } }],
    },
  });
  const f = classifyUpstream(403, disabled, NOW);
  assert.equal(f.kind, 'forbidden');
  assert.match((f as { reason: string }).reason, /^SERVICE_DISABLED: Generative Language API has not been used in project 42.*\(activate: https:\/\/console\.developers\.google\.com.*project=42\)$/);
  assert.equal(classifyUpstream(403, disabled, NOW, { passthrough: true }).kind, 'client_error');
  assert.equal(classifyUpstream(401, '', NOW).kind, 'unauthorized');
  assert.equal(classifyUpstream(500, 'not json', NOW).kind, 'server_error');
  assert.match((classifyUpstream(503, '{"error":{"message":"overloaded"}}', NOW) as { reason: string }).reason, /upstream 503: overloaded/);
  assert.equal(classifyUpstream(400, '{}', NOW).kind, 'client_error');
  assert.equal(classifyUpstream(404, '{}', NOW).kind, 'client_error');
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('soon'), null);
});

test('aliases: exact names first, then wildcards in insertion order, else pass through', () => {
  const a = new ModelAliases({ 'claude-opus-*': 'gemini-2.5-pro', 'claude-*': 'gemini-2.5-flash', 'gpt-4o': 'models/gemini-2.5-flash-lite', 'gpt-*': 'gemini-2.5-flash' });
  assert.equal(a.resolve('claude-opus-4-1'), 'gemini-2.5-pro');
  assert.equal(a.resolve('claude-sonnet-4-6'), 'gemini-2.5-flash');
  assert.equal(a.resolve('gpt-4o'), 'gemini-2.5-flash-lite');
  assert.equal(a.resolve('gpt-4o-mini'), 'gemini-2.5-flash');
  assert.equal(a.resolve('gemini-2.5-pro'), 'gemini-2.5-pro');
  assert.equal(a.resolve('models/gemini-2.0-flash'), 'gemini-2.0-flash');
  assert.equal(a.resolve('claude.x'), 'claude.x', 'a dot is not a wildcard');
});

function entry(over: Partial<RequestLogEntry>): RequestLogEntry {
  return {
    time: NOW, route: '/v1/messages', protocol: 'anthropic', model_requested: 'claude-x', model_used: 'gemini-2.5-flash',
    account_id: 'a', email: 'a@example.com', status: 200, latency_ms: 5, first_byte_ms: 2, tokens_in: 10, tokens_out: 5,
    retries: 0, error: null, ...over,
  };
}

test('request log: bounded ring, filters, live events', () => {
  const log = createRequestLog({ size: 3 });
  const events: RequestLogEntry[] = [];
  const stop = log.subscribe((e) => events.push(e));
  log.record(entry({ time: NOW - 3000, status: 429, account_id: 'b', email: 'b@example.com' }));
  log.record(entry({ time: NOW - 2000, protocol: 'openai' }));
  log.record(entry({ time: NOW - 1000, status: 503 }));
  log.record(entry({ time: NOW, model_used: 'gemini-2.5-pro' }));
  stop();
  log.record(entry({ time: NOW + 1 }));
  assert.equal(events.length, 4);
  assert.equal(log.size, 3);
  assert.equal(log.query().length, 3);
  assert.equal(log.query()[0]!.time, NOW + 1, 'newest first');
  assert.equal(log.query({ status: 'error' }).length, 1);
  assert.equal(log.query({ status: '5xx' })[0]!.status, 503);
  assert.equal(log.query({ protocol: 'openai' }).length, 0, 'evicted');
  assert.equal(log.query({ model: 'gemini-2.5-pro' }).length, 1);
  assert.equal(log.query({ account: 'A@example.com' }).length, 3);
  assert.equal(log.query({ since: NOW }).length, 2);
  assert.equal(log.query({ limit: 1 }).length, 1);
  assert.equal(log.countSince(NOW - 1000), 3);
  assert.ok(!JSON.stringify(log.query()).includes('token"'));
});

test('SSE reader handles CRLF, LF, split chunks and multi-line data; usage found in raw text', () => {
  const got: string[] = [];
  const r = new SseReader((d) => got.push(d));
  const text = 'data: {"a":1}\r\n\r\ndata: {"b":\r\ndata: 2}\n\n: comment\n\ndata: {"c":"é"}\r\n\r\n';
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 3) r.push(bytes.subarray(i, i + 3));
  r.end();
  assert.deepEqual(got, ['{"a":1}', '{"b":\n2}', '{"c":"é"}']);
  const usage = findUsage(
    'data: {"usageMetadata":{"promptTokenCount":1}}\r\n\r\ndata: {"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":5,"promptTokensDetails":[{"modality":"TEXT","tokenCount":12}],"thoughtsTokenCount":7}}\r\n\r\n',
  );
  assert.deepEqual(usage, { tokensIn: 12, tokensOut: 12 });
  assert.equal(findUsage('{"candidates":[]}'), null);
});

test('a 403 takes the account out only when it is about the account (SERVICE_DISABLED, billing), not about what the request names', () => {
  const disabled = JSON.stringify({
    error: {
      code: 403, status: 'PERMISSION_DENIED', message: 'Generative Language API has not been used in project 123 before or it is disabled.',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'SERVICE_DISABLED', metadata: { activationUrl: 'https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=123' } }],
    },
  });
  const o = classifyUpstream(403, disabled, NOW);
  assert.equal(o.kind, 'forbidden');
  assert.match((o as { reason: string }).reason, /SERVICE_DISABLED.*activate: https:\/\/console\.developers\.google\.com/);
  const foreignFile = JSON.stringify({ error: { code: 403, status: 'PERMISSION_DENIED', message: 'You do not have permission to access the File abc or it may not exist.' } });
  assert.equal(classifyUpstream(403, foreignFile, NOW).kind, 'client_error');
  assert.equal(classifyUpstream(403, disabled, NOW, { passthrough: true }).kind, 'client_error');
});
