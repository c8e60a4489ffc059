// The pure parts of Claude on Vertex AI: the byte-level body edit, the model
// id mapping, the beta filter, usage read from raw answers, and the 2xx checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editBody, topLevelMembers, vertexCountTokensBody, vertexMessagesBody } from '../../src/proxy/anthropic/vertex-body.ts';
import {
  anthropicFromVertexError, claudeJson, claudeSseHead, isAnthropicError, isClaudeModel, messageUsage, streamUsage,
  VERTEX_COUNT_TOKENS_BETAS, VERTEX_MESSAGE_BETAS, vertexBetas, vertexClaudeModel,
} from '../../src/proxy/anthropic/vertex-claude.ts';

const edit = (s: string) => vertexMessagesBody(Buffer.from(s)).toString('utf8');

test('the Messages body: model out, anthropic_version first, every other member byte for byte', () => {
  assert.equal(edit('{"model":"m","max_tokens":5}'), '{"anthropic_version":"vertex-2023-10-16","max_tokens":5}');
  // Whitespace, escapes (an escaped quote, a backslash before the closing quote), nesting, numbers as written.
  const tricky = ' {\n  "messages" : [ {"role":"user","content":"say \\"model\\": \\\\"} ],\n  "model": "claude-x",\n  "n": -1.50e+3, "t": true, "z": null, "o": {"model": "nested stays"} }';
  assert.equal(
    edit(tricky),
    '{"anthropic_version":"vertex-2023-10-16","messages" : [ {"role":"user","content":"say \\"model\\": \\\\"} ],"n": -1.50e+3,"t": true,"z": null,"o": {"model": "nested stays"}}',
  );
  assert.deepEqual(JSON.parse(edit(tricky)).o, { model: 'nested stays' });
  // A client's own anthropic_version and duplicate model keys are replaced / dropped.
  assert.equal(edit('{"anthropic_version":"2023-06-01","model":"a","model":"b","x":[]}'), '{"anthropic_version":"vertex-2023-10-16","x":[]}');
  assert.equal(edit('{}'), '{"anthropic_version":"vertex-2023-10-16"}');
  // A key written with escapes is the key it decodes to.
  assert.equal(edit('{"mod\\u0065l":"a","m\\"x":1}'), '{"anthropic_version":"vertex-2023-10-16","m\\"x":1}');
  // Non-ASCII text survives as UTF-8.
  assert.equal(JSON.parse(edit('{"model":"m","messages":[{"content":"日本語 🎉"}]}')).messages[0].content, '日本語 🎉');
  assert.throws(() => topLevelMembers('[1,2]'), SyntaxError);
});

test('the count tokens body keeps a model: the Vertex id', () => {
  assert.equal(
    vertexCountTokensBody(Buffer.from('{"messages":[],"model":"claude-sonnet-4-5-20250929"}'), 'claude-sonnet-4-5@20250929').toString(),
    '{"anthropic_version":"vertex-2023-10-16","model":"claude-sonnet-4-5@20250929","messages":[]}',
  );
  assert.equal(editBody(Buffer.from('{"a":1,"b":2}'), { drop: ['a'], first: {} }).toString(), '{"b":2}');
});

test('the model id: vertex_claude_models first (exact, then patterns), then the dated id in Vertex spelling, else as requested', () => {
  const table = { 'claude-opus-4-5*': 'claude-opus-4-5@20251101', 'claude-sonnet-4-5': 'claude-sonnet-4-5@20250929' };
  assert.equal(vertexClaudeModel('claude-opus-4-5', table), 'claude-opus-4-5@20251101');
  assert.equal(vertexClaudeModel('claude-opus-4-5-20251101', table), 'claude-opus-4-5@20251101');
  assert.equal(vertexClaudeModel('claude-sonnet-4-5', table), 'claude-sonnet-4-5@20250929');
  assert.equal(vertexClaudeModel('claude-haiku-4-5-20251001', {}), 'claude-haiku-4-5@20251001');
  assert.equal(vertexClaudeModel('claude-3-5-haiku-20241022', {}), 'claude-3-5-haiku@20241022');
  assert.equal(vertexClaudeModel('claude-opus-4-8', {}), 'claude-opus-4-8');
  assert.equal(vertexClaudeModel('claude-sonnet-4@20250514', {}), 'claude-sonnet-4@20250514');
  assert.ok(isClaudeModel('claude-opus-4-8') && isClaudeModel('Claude-3') && !isClaudeModel('gemini-2.5-pro') && !isClaudeModel('my-claude'));
});

test('betas: only those Vertex accepts go on (count tokens: fewer); the rest are named', () => {
  const header = 'claude-code-20250219,interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14,oauth-2025-04-20';
  assert.deepEqual(vertexBetas(header, VERTEX_MESSAGE_BETAS), {
    header: 'interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14',
    dropped: ['claude-code-20250219', 'oauth-2025-04-20'],
  });
  assert.deepEqual(vertexBetas(['web-search-2025-03-05', 'web-search-2025-03-05'], VERTEX_MESSAGE_BETAS), { header: 'web-search-2025-03-05', dropped: [] });
  assert.deepEqual(vertexBetas('web-search-2025-03-05', VERTEX_COUNT_TOKENS_BETAS), { header: null, dropped: ['web-search-2025-03-05'] });
  assert.deepEqual(vertexBetas(undefined, VERTEX_MESSAGE_BETAS), { header: null, dropped: [] });
});

test('usage from raw answers: a JSON message, and a stream\'s head and tail', () => {
  const msg = '{"id":"m","content":[{"type":"tool_use","input":{"output_tokens":999}}],"usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7}}';
  assert.deepEqual(messageUsage(msg), { tokensIn: 20, tokensOut: 7 });
  assert.equal(messageUsage('{"input_tokens":3}'), null);
  const head = 'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":30,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n';
  const tail = 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n';
  assert.deepEqual(streamUsage(head, tail), { tokensIn: 30, tokensOut: 42 });
  // A short stream in one chunk: the head holds message_delta too, the first usage is still message_start's.
  assert.deepEqual(streamUsage(head + tail, head + tail), { tokensIn: 30, tokensOut: 42 });
});

test('errors: Anthropic\'s pass as they are, Vertex\'s (also array-wrapped) get Anthropic\'s shape', () => {
  assert.equal(isAnthropicError('{"type":"error","error":{"type":"invalid_request_error","message":"x"}}'), true);
  assert.equal(isAnthropicError('{"error":{"code":400,"message":"x","status":"FAILED_PRECONDITION"}}'), false);
  assert.equal(isAnthropicError('not json'), false);
  assert.deepEqual(anthropicFromVertexError(404, '[{"error":{"code":404,"message":"Publisher Model `m` not found.","status":"NOT_FOUND"}}]'), {
    type: 'error',
    error: { type: 'not_found_error', message: 'Publisher Model `m` not found. (Vertex AI: NOT_FOUND)' },
  });
  assert.equal(anthropicFromVertexError(400, '<html>').error.type, 'invalid_request_error');
});

test('2xx checks: a JSON message (or input_tokens), a stream that begins with message_start', () => {
  assert.deepEqual(claudeJson(Buffer.from(' {"type":"message","content":[]}\n'), false), { ok: true, value: '{"type":"message","content":[]}' });
  assert.equal(claudeJson(Buffer.from('<html></html>'), false).ok, false);
  assert.equal(claudeJson(Buffer.from(''), false).ok, false);
  assert.equal(claudeJson(Buffer.from('{"type":"message"'), false).ok, false);
  assert.equal(claudeJson(Buffer.from('{"input_tokens":5}'), true).ok, true);
  assert.deepEqual(claudeSseHead('{"type":"message_start","message":{}}', false), { ok: true });
  const err = claudeSseHead('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', false);
  assert.ok(!err.ok && /overloaded_error/.test(err.reason));
  assert.equal(claudeSseHead(null, false).ok, false);
  assert.equal(claudeSseHead('nope', false).ok, false);
});
